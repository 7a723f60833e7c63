"""Answer latency benchmark: time to the first verified text and to the whole answer. Not a test.

For each gold set it answers every question (or the first --limit) through the answer
service's stream, exactly as `/v1/ask` with `"stream": true` does, with the configured
backend (the embedded model by default), after one warm-up question, and prints p50/p95 of the
first `delta` (first verified text; a refusal's sentence counts) and of the whole answer,
plus the process's cold start (start to the first answer, model load included).

    .venv/bin/python evals/bench_answer.py                      # seed gold, external-qa, squad2-dev
    .venv/bin/python evals/bench_answer.py --sets seed --limit 20 --out bench_answer.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

T0 = time.perf_counter()  # cold start counts from here (the interpreter is already up)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.answer.events import Delta, Done  # noqa: E402
from service.evals.dataset import load_dataset  # noqa: E402
from service.evals.metrics import percentile  # noqa: E402
from service.evals.runner import build_service  # noqa: E402
from service.settings import Settings  # noqa: E402

SHARED = ROOT.parent / "shared" / "benchmarks"
SETS = {
    "seed": (ROOT / "evals" / "seeds_gold.jsonl", ROOT / "seeds"),
    "external-qa": (SHARED / "external-qa" / "qa.jsonl", SHARED / "external-qa" / "docs"),
    "squad2-dev": (SHARED / "squad2-dev" / "qa.jsonl", SHARED / "squad2-dev" / "docs"),
}


def timed_answer(service, question: str, documents: list[str] | None) -> tuple[float, float, bool]:  # noqa: ANN001
    start = time.perf_counter()
    first = None
    answerable = False
    for event in service.ask_stream(question, None, documents):
        if isinstance(event, Delta) and first is None:
            first = time.perf_counter() - start
        if isinstance(event, Done):
            answerable = event.answer.answerable
    total = time.perf_counter() - start
    return first if first is not None else total, total, answerable


def resolve(doc_ids: list[str], known: set[str]) -> list[str] | None:
    out = [next((c for c in (d, f"{d}.txt", f"{d}.md") if c in known), d) for d in doc_ids]
    return out or None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="seed,external-qa,squad2-dev")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = Settings()
    rows = []
    cold_s = None
    for name in args.sets.split(","):
        dataset, docs = SETS[name]
        service = build_service(settings, docs, backend=args.backend)
        items = load_dataset(dataset)[: args.limit]
        known = set(service.index.manifest)
        warm = items[0]
        _, first_total, _ = timed_answer(service, warm["question"], resolve(warm.get("doc_ids") or [], known))
        if cold_s is None:
            cold_s = time.perf_counter() - T0
        firsts, totals, answered = [], [], 0
        for item in items:
            first, total, ok = timed_answer(service, item["question"], resolve(item.get("doc_ids") or [], known))
            firsts.append(first)
            totals.append(total)
            answered += ok
        row = {"set": name, "questions": len(items), "answered": answered,
               "first_delta_p50_s": round(percentile(firsts, 50), 2), "first_delta_p95_s": round(percentile(firsts, 95), 2),
               "answer_p50_s": round(percentile(totals, 50), 2), "answer_p95_s": round(percentile(totals, 95), 2)}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"cold start (process start to the first answer, model load included): {cold_s:.1f} s\n")
    print("| set | questions | first delta p50 | p95 | answer p50 | p95 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['questions']} | {r['first_delta_p50_s']} s | {r['first_delta_p95_s']} s | "
              f"{r['answer_p50_s']} s | {r['answer_p95_s']} s |")
    if args.out:
        args.out.write_text(json.dumps({"cold_start_s": cold_s, "sets": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
