"""Eval reports (report.json, report.md, a stdout table), the threshold gate and run comparison.

`report.json` layout::

    {"config":      {dataset, dataset_name, docs, backend, backends, models, top_k, limit,
                     n_items, git_commit, git_dirty, started_at, wall_s, settings: {...}},
     "metrics":     {flat metrics from `metrics.summarize`},
     "by_category": {category: flat metrics},
     "failures":    [{id, category, question, answer, citations, reasons, why}],
     "items":       [one record per item, see `runner.run_eval`]}

Thresholds (`evals/thresholds.toml`) hold two things:

* `[gate.<backend>.<dataset>.min]` / `.max`: absolute bounds a full run must meet;
* `[tolerances.absolute]` (largest allowed worsening, in metric units) and
  `[tolerances.relative]` (as a fraction of the baseline value) for `--baseline` comparisons.
  A metric is compared only if it has a tolerance. Whether worse means lower or higher comes
  from the metric's name (`lower_is_better`).
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.evals.metrics import K_VALUES
from service.evals.runner import EvalRun

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Regression",
    "baseline_mismatch",
    "build_report",
    "check_gate",
    "compare",
    "dataset_name",
    "gate_for",
    "git_commit",
    "load_thresholds",
    "lower_is_better",
    "render_markdown",
    "summary_table",
    "write_report",
]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_THRESHOLDS = ROOT / "evals" / "thresholds.toml"

# Dataset files with generic names are named after their folder (external-qa/qa.jsonl).
_GENERIC_STEMS = frozenset({"qa", "gold", "data", "dataset", "test", "dev", "eval"})

# Columns of the per-category table: (metric key, header).
_CATEGORY_COLUMNS = [
    ("n_items", "n"),
    ("accuracy", "accuracy"),
    ("contains", "contains"),
    ("token_f1", "F1"),
    ("citation_recall_any", "cit. recall"),
    ("citation_precision", "cit. precision"),
    ("refusal_accuracy", "refusal acc."),
    ("false_refusal_rate", "false refusals"),
    ("recall_at_5", "R@5"),
    ("mrr", "MRR"),
]


# --------------------------------------------------------------------------- helpers


def dataset_name(path: str | Path) -> str:
    """Short name of a dataset file, used to pick its gate: `seeds_gold`, `external-qa`."""
    p = Path(path)
    return p.parent.resolve().name if p.stem.lower() in _GENERIC_STEMS else p.stem


def git_commit(cwd: Path = ROOT) -> tuple[str | None, bool | None]:
    """(HEAD commit, working tree dirty) or (None, None) outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head or None, bool(dirty)


def lower_is_better(metric: str) -> bool:
    return (metric == "false_refusal_rate" or metric.startswith("latency_")
            or "_tokens_" in metric)


def _fmt(value: Any, metric: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if metric.startswith("n_"):
            return f"{value:.0f}"
        if metric.startswith("latency_") or "_tokens_" in metric:
            return f"{value:.1f}"
        return f"{value:.3f}"
    return str(value)


def _metrics_of(report_or_metrics: Mapping[str, Any]) -> Mapping[str, Any]:
    return report_or_metrics["metrics"] if "metrics" in report_or_metrics else report_or_metrics


# --------------------------------------------------------------------------- building


def build_report(run: EvalRun, *, dataset: str | Path, docs: str | Path, backend: str,
                 settings: Mapping[str, Any] | None = None, limit: int | None = None,
                 started_at: str | None = None) -> dict[str, Any]:
    """The full report dict for one run (what report.json holds)."""
    commit, dirty = git_commit()
    summary = dict(run.summary)
    by_category = summary.pop("by_category")
    summary.pop("failures")
    records = {r["id"]: r for r in run.records}
    failures = [
        {k: r[k] for k in ("id", "category", "question", "answer", "citations", "reasons", "why",
                           "gold_answers", "gold_evidence")}
        for r in run.records if r["reasons"]
    ]
    return {
        "config": {
            "dataset": str(dataset),
            "dataset_name": dataset_name(dataset),
            "docs": str(docs),
            "backend": backend,
            "backends": run.backends,
            "models": run.models,
            "limit": limit,
            "n_items": len(records),
            "git_commit": commit,
            "git_dirty": dirty,
            "started_at": started_at or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_s": round(run.wall_s, 3),
            "tokens_estimated": sum(bool(r["tokens_estimated"]) for r in run.records),
            "settings": dict(settings or {}),
        },
        "metrics": summary,
        "by_category": by_category,
        "failures": failures,
        "items": run.records,
    }


def write_report(report: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write report.json and report.md into `out_dir` (created); return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path


# --------------------------------------------------------------------------- rendering


def _summary_rows(m: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(group, 'name value  name value ...') rows of the headline numbers."""

    def pairs(*items: tuple[str, str]) -> str:
        return "  ".join(f"{label} {_fmt(m.get(key), key)}" for label, key in items)

    stages = sorted({k.split("_")[1] for k in m if k.startswith("latency_") and k.endswith("_p50")},
                    key=lambda s: (s == "total", s))
    rows = [
        ("answers", pairs(("accuracy", "accuracy"), ("pass", "pass_rate"), ("contains", "contains"),
                          ("EM", "exact_match"), ("F1", "token_f1"))),
        ("citations", pairs(("recall(any)", "citation_recall_any"),
                            ("evidence recall", "evidence_recall"),
                            ("precision", "citation_precision"))),
        ("refusals", pairs(("accuracy", "refusal_accuracy"), ("false-refusal rate", "false_refusal_rate"))),
        ("retrieval", pairs(*[(f"R@{k}", f"recall_at_{k}") for k in K_VALUES], ("MRR", "mrr"))),
        ("latency ms", "  ".join(
            f"{s} {_fmt(m.get(f'latency_{s}_ms_p50'), 'latency_')}/{_fmt(m.get(f'latency_{s}_ms_p95'), 'latency_')}"
            for s in stages) + "  (p50/p95)"),
        ("tokens", pairs(("prompt mean", "prompt_tokens_mean"), ("completion mean", "completion_tokens_mean"),
                         ("prompt total", "prompt_tokens_total"),
                         ("completion total", "completion_tokens_total"))),
    ]
    return rows


def _headline(report: Mapping[str, Any]) -> str:
    c, m = report["config"], report["metrics"]
    return (f"{c['dataset_name']}: {c['n_items']} items ({_fmt(m['n_answerable'], 'n_')} answerable, "
            f"{_fmt(m['n_unanswerable'], 'n_')} unanswerable) · backend {c['backend']} "
            f"(answered by {', '.join(c['backends']) or '–'}; model {', '.join(c['models']) or '–'}) · "
            f"{c['wall_s']:.1f} s")


def summary_table(report: Mapping[str, Any]) -> str:
    """The compact table printed to stdout."""
    rows = _summary_rows(report["metrics"])
    width = max(len(g) for g, _ in rows)
    lines = [_headline(report)] + [f"  {g:<{width}}  {v}" for g, v in rows]
    if report["config"].get("tokens_estimated"):
        lines.append(f"  ({report['config']['tokens_estimated']} items' tokens estimated with tiktoken)")
    return "\n".join(lines)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = [[cell.replace("|", "\\|").replace("\n", " ") for cell in row] for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(r) + " |" for r in esc]


def _one_line(text: str) -> str:
    """Keep a list item on one line; show where the source text had line breaks."""
    return " ⏎ ".join(part.strip() for part in text.splitlines()) if "\n" in text else text


def render_markdown(report: Mapping[str, Any]) -> str:
    c, m = report["config"], report["metrics"]
    lines = [f"# Footnote eval: {c['dataset_name']}", "", _headline(report), ""]
    commit = c.get("git_commit")
    lines += [
        f"- dataset: `{c['dataset']}`; documents: `{c['docs']}`"
        + (f"; limit {c['limit']}" if c.get("limit") is not None else ""),
        f"- commit: `{commit or 'unknown'}`" + (" (uncommitted changes)" if c.get("git_dirty") else ""),
        f"- started: {c['started_at']}; wall time {c['wall_s']:.1f} s",
    ]
    if c.get("settings"):
        lines.append("- settings: " + ", ".join(f"{k}={v}" for k, v in c["settings"].items()))
    lines += ["", "## Summary", ""]
    lines += _md_table(["", "metrics"], [[g, v] for g, v in _summary_rows(m)])
    lines += ["", "## By category", ""]
    header = ["category"] + [h for _, h in _CATEGORY_COLUMNS]
    rows = [[cat] + [_fmt(cm.get(k), k) for k, _ in _CATEGORY_COLUMNS]
            for cat, cm in report["by_category"].items()]
    rows.append(["**all**"] + [_fmt(m.get(k), k) for k, _ in _CATEGORY_COLUMNS])
    lines += _md_table(header, rows)
    failures = report["failures"]
    lines += ["", f"## Failed items ({len(failures)} of {c['n_items']})", ""]
    if not failures:
        lines.append("None.")
    for f in failures:
        lines += [
            f"### {f['id']} ({f['category']}): {', '.join(f['reasons'])}",
            "",
            f"- question: {_one_line(f['question'])}",
            f"- answer: {_one_line(f['answer'])}",
        ]
        if f["gold_answers"]:
            lines.append(f"- gold: {' | '.join(f['gold_answers'])}")
        for cit in f["citations"]:
            lines.append(f"- cited [{cit['n']}] {cit['document']} #{cit['sentence']}: {_one_line(cit['text'])}")
        for ev in f["gold_evidence"]:
            lines.append(f"- gold evidence: {_one_line(ev)}")
        if f["why"]:
            lines.append(f"- why: {'; '.join(f['why'])}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- gate


def load_thresholds(path: str | Path = DEFAULT_THRESHOLDS) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def gate_for(thresholds: Mapping[str, Any], backend: str, dataset: str) -> dict[str, dict[str, float]] | None:
    """`{"min": {...}, "max": {...}}` for a backend and dataset name, or None if none is set."""
    gate = thresholds.get("gate", {}).get(backend, {}).get(dataset)
    if gate is None:
        return None
    return {"min": dict(gate.get("min", {})), "max": dict(gate.get("max", {}))}


def check_gate(metrics_or_report: Mapping[str, Any], gate: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Violations of the absolute bounds (empty = the gate passes). A missing metric fails."""
    m = _metrics_of(metrics_or_report)
    problems = []
    for metric, bound in gate.get("min", {}).items():
        value = m.get(metric)
        if value is None:
            problems.append(f"{metric}: not measured (minimum {bound:g})")
        elif value < bound:
            problems.append(f"{metric} {value:.3f} is below the minimum {bound:g}")
    for metric, bound in gate.get("max", {}).items():
        value = m.get(metric)
        if value is None:
            problems.append(f"{metric}: not measured (maximum {bound:g})")
        elif value > bound:
            problems.append(f"{metric} {value:.3f} is above the maximum {bound:g}")
    return problems


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Regression:
    metric: str
    baseline: float | None
    current: float | None
    allowed: float  # the largest worsening allowed, in metric units

    def __str__(self) -> str:
        if self.current is None:
            return f"{self.metric}: {_fmt(self.baseline, self.metric)} in the baseline, not measured now"
        direction = "rose" if lower_is_better(self.metric) else "dropped"
        delta = abs(self.current - (self.baseline or 0.0))
        return (f"{self.metric} {direction} {_fmt(self.baseline, self.metric)} -> "
                f"{_fmt(self.current, self.metric)} (by {delta:.3g}; allowed {self.allowed:.3g})")


def compare(baseline: Mapping[str, Any], current: Mapping[str, Any],
            tolerances: Mapping[str, Any]) -> list[Regression]:
    """Metrics that got worse than their tolerance allows, comparing two reports (or metric dicts).

    `tolerances` is the `[tolerances]` table: `absolute` and/or `relative` maps of metric ->
    allowed worsening. When a metric has both, the larger allowance applies. Metrics without
    a tolerance, or missing from the baseline, are not compared.
    """
    base, cur = _metrics_of(baseline), _metrics_of(current)
    absolute = tolerances.get("absolute", {})
    relative = tolerances.get("relative", {})
    out: list[Regression] = []
    for metric in sorted(set(absolute) | set(relative)):
        b = base.get(metric)
        if b is None:
            continue
        allowed = max(float(absolute.get(metric, 0.0)), float(relative.get(metric, 0.0)) * abs(b))
        c = cur.get(metric)
        if c is None:
            out.append(Regression(metric, b, None, allowed))
            continue
        worsening = (c - b) if lower_is_better(metric) else (b - c)
        if worsening > allowed + 1e-9:
            out.append(Regression(metric, b, c, allowed))
    return out


def baseline_mismatch(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Why two reports may not be comparable (different dataset, item set or backend)."""
    problems = []
    bc, cc = baseline.get("config", {}), current.get("config", {})
    for key in ("dataset_name", "backend"):
        if bc.get(key) != cc.get(key):
            problems.append(f"{key} differs: baseline {bc.get(key)!r}, current {cc.get(key)!r}")
    b_ids = [r["id"] for r in baseline.get("items", [])]
    c_ids = [r["id"] for r in current.get("items", [])]
    if b_ids and c_ids and b_ids != c_ids:
        problems.append(f"item sets differ: baseline {len(b_ids)} items, current {len(c_ids)} items "
                        f"({len(set(b_ids) ^ set(c_ids))} not in both)")
    return problems
