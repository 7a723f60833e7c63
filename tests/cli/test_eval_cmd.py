"""`footnote eval`: summary, report files, the threshold gate and --baseline exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def cli(use_settings, tmp_path: Path):
    """Run `footnote eval --backend extractive ...` with a temporary data folder; returns the exit code."""
    use_settings(docs_dir=ROOT / "seeds", data_dir=tmp_path / "data")

    def run(*args: str) -> int:
        return main(["eval", "--backend", "extractive", "--quiet", *args])

    return run


def test_seed_eval_prints_summary_writes_reports_and_passes_gate(cli, capsys, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc = cli("--out", str(out))
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    assert stdout.startswith("seeds_gold: 52 items (30 answerable, 22 unanswerable) · backend extractive")
    assert "gate: passed" in stdout
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["config"]["n_items"] == 52 and report["config"]["backend"] == "extractive"
    assert report["config"]["docs"] == str(ROOT / "seeds")
    assert f"contains {report['metrics']['contains']:.3f}" in stdout
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# Footnote eval: seeds_gold")
    assert all(f"### {f['id']} " in md for f in report["failures"])



def test_baseline_passes_an_equal_run_and_fails_a_drop(cli, capsys, tmp_path: Path) -> None:
    # Latency is compared too, but timings on a busy test machine are noise: leave them out here.
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text("\n".join(line for line in (ROOT / "evals" / "thresholds.toml").read_text().splitlines()
                                    if not line.startswith("latency_")), encoding="utf-8")
    base = tmp_path / "base"
    assert cli("--out", str(base), "--limit", "12", "--thresholds", str(thresholds)) == 0
    report = json.loads((base / "report.json").read_text(encoding="utf-8"))
    capsys.readouterr()

    rc = cli("--out", str(tmp_path / "again"), "--limit", "12", "--baseline", str(base / "report.json"),
             "--thresholds", str(thresholds))
    captured = capsys.readouterr()
    assert rc == 0, captured.out
    assert "baseline: no metric worse than its tolerance" in captured.out
    assert "warning" not in captured.err

    better = dict(report, metrics={**report["metrics"], "contains": report["metrics"]["contains"] + 0.1})
    (tmp_path / "better.json").write_text(json.dumps(better), encoding="utf-8")
    rc = cli("--out", str(tmp_path / "third"), "--limit", "12", "--baseline", str(tmp_path / "better.json"),
             "--thresholds", str(thresholds))
    stdout = capsys.readouterr().out
    assert rc == 1
    assert "baseline: 1 regression(s)" in stdout and "contains dropped" in stdout


def test_below_threshold_exits_1(cli, capsys, tmp_path: Path) -> None:
    strict = tmp_path / "thresholds.toml"
    strict.write_text('[gate.extractive.seeds_gold.min]\ncontains = 0.99\n[tolerances]\n',
                      encoding="utf-8")
    rc = cli("--out", str(tmp_path / "out"), "--thresholds", str(strict))
    stdout = capsys.readouterr().out
    assert rc == 1
    assert "gate: FAILED" in stdout and "is below the minimum 0.99" in stdout


def test_limit_runs_a_subset_and_skips_the_gate(cli, capsys, tmp_path: Path) -> None:
    rc = cli("--out", str(tmp_path / "out"), "--limit", "5")
    stdout = capsys.readouterr().out
    assert rc == 0 and "seeds_gold: 5 items" in stdout and "gate: skipped" in stdout
    assert json.loads((tmp_path / "out" / "report.json").read_text())["config"]["limit"] == 5


def test_usage_errors_exit_2(cli, capsys, tmp_path: Path) -> None:
    lonely = tmp_path / "lonely" / "set.jsonl"
    lonely.parent.mkdir()
    lonely.write_text('{"id": "a", "question": "q?", "answers": [], "evidence": [], "answerable": false}\n')
    assert cli("--dataset", str(lonely), "--out", str(tmp_path / "o")) == 2
    assert "pass --docs DIR" in capsys.readouterr().err
    assert cli("--limit", "0") == 2
    assert cli("--dataset", str(tmp_path / "missing.jsonl"), "--docs", str(ROOT / "seeds")) == 2
    assert not (tmp_path / "o").exists()


def test_external_dataset_defaults_to_docs_next_to_it() -> None:
    from service.cli.eval_cmd import DEFAULT_DATASET, DEFAULT_DOCS, _docs_for

    external = ROOT.parent / "shared" / "benchmarks" / "external-qa" / "qa.jsonl"
    if not external.is_file():
        pytest.skip("external-qa benchmark not present")
    assert _docs_for(external, None) == external.parent / "docs"
    assert _docs_for(DEFAULT_DATASET, None) == DEFAULT_DOCS
    assert _docs_for(external, Path("x")) == Path("x")
