"""Reports, the threshold gate and baseline comparison."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from service.evals.metrics import ItemResult, failure_reasons, summarize
from service.evals.report import (
    Regression,
    baseline_mismatch,
    build_report,
    check_gate,
    compare,
    dataset_name,
    gate_for,
    load_thresholds,
    lower_is_better,
    render_markdown,
    summary_table,
    write_report,
)
from service.evals.runner import EvalRun

S1 = "Macron said the 26 countries had pledged to ensure Ukraine's security."
S2 = "He spoke at the Elysee Palace in Paris on September 4."

TOL = {"absolute": {"contains": 0.02, "false_refusal_rate": 0.02},
       "relative": {"latency_total_ms_p50": 0.5}}


def _record(res: ItemResult, question: str, answer: str, cites: list[str]) -> dict:
    reasons = failure_reasons(res)
    return {
        "id": res.id, "category": res.category, "question": question, "answerable": res.answerable,
        "refused": res.refused, "answer": answer,
        "citations": [{"n": i, "document": "doc.txt", "sentence": i, "text": t}
                      for i, t in enumerate(cites, start=1)],
        "gold_answers": res.gold_answers, "gold_evidence": res.gold_evidence, "documents": None,
        "passed": not reasons, "reasons": reasons, "why": ["gold evidence retrieved at rank 2"] if reasons else [],
        "gold_rank": 1, "backend": "extractive", "model": "extractive", "latency_ms": res.latency_ms,
        "prompt_tokens": 0, "completion_tokens": 0, "tokens_estimated": False,
        "verification": {}, "warnings": [],
    }


@pytest.fixture()
def run() -> EvalRun:
    good = ItemResult("a", "single-fact", True, False, answer=f"{S1} [1]", citation_texts=[S1],
                      gold_answers=["26"], gold_evidence=[S1], retrieved_texts=[S1, S2],
                      latency_ms={"retrieve": 10.0, "total": 12.0})
    wrong = ItemResult("b", "single-fact", True, False, answer=f"{S1} [1]", citation_texts=[S1],
                       gold_answers=["Elysee Palace"], gold_evidence=[S2], retrieved_texts=[S1, S2],
                       latency_ms={"retrieve": 11.0, "total": 13.0})
    bait = ItemResult("c", "unanswerable", False, False, answer=f"{S2} [1]", citation_texts=[S2],
                      latency_ms={"retrieve": 9.0, "total": 10.0})
    results = [good, wrong, bait]
    records = [_record(good, "How many countries?", good.answer, [S1]),
               _record(wrong, "Where | did he speak?", wrong.answer, [S1]),
               _record(bait, "Capital of Bulgaria?", bait.answer, [S2])]
    return EvalRun(results, records, summarize(results), 1.5, ["extractive"], ["extractive"])


@pytest.fixture()
def report(run) -> dict:
    return build_report(run, dataset="evals/seeds_gold.jsonl", docs="seeds", backend="extractive",
                        settings={"top_k": 8}, started_at="2025-01-01T00:00:00+00:00")


# ------------------------------------------------------------------ report files


def test_report_json_holds_metrics_categories_failures_and_config(report, tmp_path: Path) -> None:
    json_path, md_path = write_report(report, tmp_path / "out")
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["metrics"]["contains"] == 0.5 and data["metrics"]["refusal_accuracy"] == 0.0
    assert set(data["by_category"]) == {"single-fact", "unanswerable"}
    assert data["by_category"]["single-fact"]["contains"] == 0.5
    assert "by_category" not in data["metrics"] and "failures" not in data["metrics"]
    assert [f["id"] for f in data["failures"]] == ["b", "c"]
    b = data["failures"][0]
    assert b["question"] == "Where | did he speak?" and b["reasons"] == ["wrong answer", "missing citation"]
    assert b["citations"][0]["text"] == S1 and b["why"]
    c = data["config"]
    assert (c["dataset_name"], c["backend"], c["n_items"], c["wall_s"]) == ("seeds_gold", "extractive", 3, 1.5)
    assert c["settings"] == {"top_k": 8} and "git_commit" in c
    assert len(data["items"]) == 3
    assert md_path.read_text(encoding="utf-8") == render_markdown(report)


def test_markdown_has_tables_and_every_failure(report) -> None:
    md = render_markdown(report)
    assert "## Summary" in md and "## By category" in md
    assert "| single-fact | 2 | 0.500 | 0.500 |" in md
    assert "| unanswerable | 1 | 0.000 |" in md
    assert "## Failed items (2 of 3)" in md
    assert "### b (single-fact): wrong answer, missing citation" in md
    assert "### c (unanswerable): answered unanswerable" in md
    assert "### a " not in md
    assert "Where \\| did he speak?" not in md  # questions are list items, not table cells
    assert f"- cited [1] doc.txt #1: {S1}" in md and f"- gold evidence: {S2}" in md
    assert "- gold: Elysee Palace" in md and "- why: gold evidence retrieved at rank 2" in md


def test_summary_table_is_compact_and_has_the_headline_numbers(report) -> None:
    table = summary_table(report)
    lines = table.splitlines()
    assert len(lines) <= 8
    assert lines[0].startswith("seeds_gold: 3 items (2 answerable, 1 unanswerable) · backend extractive")
    assert "contains 0.500" in table and "accuracy 0.333" in table
    assert "R@1 0.500" in table and "MRR 0.750" in table
    assert "total 12.0/" in table


def test_dataset_name() -> None:
    assert dataset_name("evals/seeds_gold.jsonl") == "seeds_gold"
    assert dataset_name("../shared/benchmarks/external-qa/qa.jsonl") == "external-qa"


# ------------------------------------------------------------------ gate


def test_thresholds_file_names_only_real_metrics(run) -> None:
    thresholds = load_thresholds()
    known = set(run.summary) - {"by_category", "failures"}
    for backend, datasets in thresholds["gate"].items():
        for name, gate in datasets.items():
            for bound in ("min", "max"):
                unknown = set(gate.get(bound, {})) - known
                assert not unknown, f"gate.{backend}.{name}.{bound}: {unknown}"
    for kind in ("absolute", "relative"):
        tol = thresholds["tolerances"][kind]
        assert tol and not set(tol) - known, f"tolerances.{kind}: {set(tol) - known}"
        assert all(v >= 0 for v in tol.values())
    assert gate_for(thresholds, "extractive", "seeds_gold") is not None
    assert gate_for(thresholds, "extractive", "no-such-set") is None


def test_check_gate_min_max_and_unmeasured() -> None:
    gate = {"min": {"contains": 0.7, "mrr": 0.5}, "max": {"false_refusal_rate": 0.1}}
    assert check_gate({"contains": 0.7, "mrr": 0.9, "false_refusal_rate": 0.1}, gate) == []
    problems = check_gate({"contains": 0.69, "mrr": None, "false_refusal_rate": 0.2}, gate)
    assert len(problems) == 3
    assert "contains 0.690 is below the minimum 0.7" in problems
    assert "mrr: not measured (minimum 0.5)" in problems
    assert "false_refusal_rate 0.200 is above the maximum 0.1" in problems


# ------------------------------------------------------------------ comparison


def test_compare_passes_an_equal_run(report) -> None:
    assert compare(report, copy.deepcopy(report), load_thresholds()["tolerances"]) == []
    assert baseline_mismatch(report, copy.deepcopy(report)) == []


def test_compare_flags_a_drop_beyond_tolerance(report) -> None:
    current = copy.deepcopy(report)
    current["metrics"]["contains"] = 0.5 - 0.03
    regressions = compare(report, current, TOL)
    assert regressions == [Regression("contains", 0.5, 0.47, 0.02)]
    assert "contains dropped 0.500 -> 0.470" in str(regressions[0])
    current["metrics"]["contains"] = 0.5 - 0.02  # exactly the tolerance: allowed
    assert compare(report, current, TOL) == []
    current["metrics"]["contains"] = 0.9  # improvements never regress
    assert compare(report, current, TOL) == []


def test_compare_knows_which_way_is_worse(report) -> None:
    base = {"false_refusal_rate": 0.10, "latency_total_ms_p50": 100.0, "contains": 0.5}
    assert lower_is_better("false_refusal_rate") and lower_is_better("prompt_tokens_mean")
    assert not lower_is_better("recall_at_5")
    assert compare(base, {**base, "false_refusal_rate": 0.05}, TOL) == []
    worse = compare(base, {**base, "false_refusal_rate": 0.15}, TOL)
    assert [r.metric for r in worse] == ["false_refusal_rate"] and "rose" in str(worse[0])
    assert compare(base, {**base, "latency_total_ms_p50": 149.0}, TOL) == []  # 50 % relative
    assert [r.metric for r in compare(base, {**base, "latency_total_ms_p50": 151.0}, TOL)] == [
        "latency_total_ms_p50"]


def test_compare_flags_a_metric_that_disappeared_and_skips_unmeasured_baselines() -> None:
    assert [r.metric for r in compare({"contains": 0.5}, {"contains": None}, TOL)] == ["contains"]
    assert compare({"contains": None}, {"contains": 0.1}, TOL) == []
    assert compare({"mrr": 0.9}, {"mrr": 0.1}, TOL) == []  # no tolerance: not compared


def test_baseline_mismatch(report) -> None:
    other = copy.deepcopy(report)
    other["config"]["dataset_name"] = "external-qa"
    other["items"] = other["items"][:2]
    problems = baseline_mismatch(report, other)
    assert any("dataset_name differs" in p for p in problems)
    assert any("item sets differ" in p for p in problems)
