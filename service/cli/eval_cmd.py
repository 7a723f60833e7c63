"""`footnote eval`: run a gold QA set, print a summary, write report.json/report.md, gate.

Exit status: 0 all good; 1 below a threshold in evals/thresholds.toml or a metric worse than
its tolerance against --baseline; 2 a usage or setup error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from service.cli import UsageError
from service.llm.registry import NAMES
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATASET = ROOT / "evals" / "seeds_gold.jsonl"
DEFAULT_DOCS = ROOT / "seeds"
DEFAULT_OUT = Path("evals") / "out"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score answers, citations, refusals and retrieval on a gold set")
    p.add_argument("--dataset", type=Path, default=None,
                   help="gold set, JSON Lines (default: evals/seeds_gold.jsonl)")
    p.add_argument("--docs", type=Path, default=None,
                   help="its documents (default: seeds/ for the seed set, else docs/ next to the dataset)")
    p.add_argument("--backend", choices=NAMES, default=None,
                   help="answer with this backend (default FOOTNOTE_LLM, or auto)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write report.json and report.md")
    p.add_argument("--baseline", type=Path, default=None,
                   help="a previous report.json; fail when a metric is worse by more than its tolerance")
    p.add_argument("--limit", type=int, default=None, help="only the first N items (skips the threshold gate)")
    p.add_argument("--top-k", type=int, default=None, help="sentences to retrieve (default FOOTNOTE_TOP_K)")
    p.add_argument("--thresholds", type=Path, default=None, help="thresholds file (default evals/thresholds.toml)")
    p.add_argument("--whole-corpus", action="store_true",
                   help="ignore the items' doc_ids and search all documents")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.set_defaults(run=run)


def _docs_for(dataset: Path, docs: Path | None) -> Path | None:
    if docs is not None:
        return docs
    if dataset.resolve() == DEFAULT_DATASET.resolve():
        return DEFAULT_DOCS
    nearby = dataset.parent / "docs"
    return nearby if nearby.is_dir() else None


def run(args: argparse.Namespace, settings: Settings) -> int:
    from service.evals import report as rep
    from service.evals.dataset import load_dataset
    from service.evals.runner import build_service, run_eval

    dataset = args.dataset or DEFAULT_DATASET
    docs = _docs_for(dataset, args.docs)
    if docs is None:
        raise UsageError(f"no documents for {dataset}: pass --docs DIR")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.top_k is not None and args.top_k < 1:
        raise UsageError("--top-k must be at least 1")
    backend = args.backend or settings.resolved_backend
    try:
        thresholds = rep.load_thresholds(args.thresholds or rep.DEFAULT_THRESHOLDS)
        items = load_dataset(dataset)
        baseline = json.loads(args.baseline.read_text(encoding="utf-8")) if args.baseline else None
    except (OSError, ValueError) as exc:  # tomllib/json decode errors are ValueErrors
        raise UsageError(str(exc)) from exc
    if not items:
        raise UsageError(f"{dataset} has no items")

    def progress(i: int, n: int, record: dict) -> None:
        if not args.quiet and sys.stderr.isatty():
            print(f"\r[{i}/{n}] {record['id'][:40]:<40}", end="" if i < n else "\n",
                  file=sys.stderr, flush=True)

    service = build_service(settings, docs, backend=backend, quiet=args.quiet)
    run_ = run_eval(items, service, backend=backend, top_k=args.top_k, limit=args.limit,
                    use_doc_ids=not args.whole_corpus, progress=progress)

    s = service.settings
    report = rep.build_report(
        run_, dataset=dataset, docs=docs, backend=backend, limit=args.limit,
        settings={"top_k": args.top_k or s.top_k, "context_tokens": s.context_tokens,
                  "min_relevance": s.min_relevance, "llm_model": s.llm_model,
                  "llm_max_tokens": s.llm_max_tokens, "model_path": str(s.model_path or ""),
                  "whole_corpus": args.whole_corpus},
    )
    json_path, md_path = rep.write_report(report, args.out)
    print(rep.summary_table(report))
    print(f"wrote {json_path} and {md_path}")

    status = 0
    if set(run_.backends) - {backend}:
        print(f"warning: some items were answered by {', '.join(sorted(set(run_.backends) - {backend}))} "
              f"instead of {backend} (see warnings in report.json)", file=sys.stderr)
    name = report["config"]["dataset_name"]
    gate = rep.gate_for(thresholds, backend, name)
    if args.limit is not None:
        print("gate: skipped (--limit runs a subset)")
    elif gate is None:
        print(f"gate: no thresholds for backend {backend!r} on {name!r}")
    elif problems := rep.check_gate(report, gate):
        print("gate: FAILED")
        for p in problems:
            print(f"  {p}")
        status = 1
    else:
        print("gate: passed")

    if baseline is not None:
        for p in rep.baseline_mismatch(baseline, report):
            print(f"warning: baseline {p}", file=sys.stderr)
        regressions = rep.compare(baseline, report, thresholds.get("tolerances", {}))
        if regressions:
            print(f"baseline: {len(regressions)} regression(s) against {args.baseline}")
            for r in regressions:
                print(f"  {r}")
            status = 1
        else:
            print(f"baseline: no metric worse than its tolerance against {args.baseline}")
    return status
