"""Fit the answer check's weights on SQuAD 2.0 training questions. Not a test.

    # 1. answer a sample of ../shared/benchmarks/squad2-train with the check observing only
    #    (threshold 0: it scores every kept answer, refuses none) and save its signals
    .venv/bin/python evals/fit_answer_check.py collect --docs 50 --out evals/out/check-train.jsonl
    # 2. fit a logistic model on them, print each signal's AUC and the trade-off curve, and
    #    write service/answer/answer_check.json
    .venv/bin/python evals/fit_answer_check.py fit evals/out/check-train.jsonl [--write]
    # (or fit on a `footnote eval` report.json of squad2-train questions run with the check
    #  observing; --probe-scores puts held-out answerable-probe scores in place of the probe's own)
    .venv/bin/python evals/fit_answer_check.py fit report.json --features judge,probe \
        --probe-scores evals/out/probe-cv.jsonl [--write]

The label of an answered item is 1 when it is answerable and the answer contains a gold
answer, else 0: the check should pass right answers and turn down everything else. Items the
model or the verifier already refused carry no signals; they count as refusals in the curve.
squad2-train shares articles with squad2-dev but no paragraph; report on squad2-dev only.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.answer.answerability import FEATURES, PROBE_WEIGHTS_FILE, WEIGHTS_FILE  # noqa: E402
from service.evals.metrics import contains_any  # noqa: E402

TRAIN = ROOT.parent / "shared" / "benchmarks" / "squad2-train"


def collect(args: argparse.Namespace) -> int:
    from service.evals.dataset import load_dataset
    from service.evals.runner import build_service
    from service.settings import Settings

    items = load_dataset(TRAIN / "qa.jsonl")
    by_doc: dict[str, list[dict]] = {}
    for item in items:
        by_doc.setdefault(item["doc_ids"][0], []).append(item)
    rng = random.Random(args.seed)
    docs = sorted(by_doc)
    rng.shuffle(docs)
    chosen = []
    for doc in docs[: args.docs]:
        answerable = [i for i in by_doc[doc] if i["answerable"]]
        unanswerable = [i for i in by_doc[doc] if not i["answerable"]]
        rng.shuffle(answerable)
        rng.shuffle(unanswerable)
        chosen += answerable[: args.per_doc // 2] + unanswerable[: args.per_doc // 2]

    settings = Settings().model_copy(update={"answer_threshold": 0.0, "llm_fallback": False,
                                             "answer_check_all_signals": True})
    service = build_service(settings, TRAIN / "docs", backend=args.backend)
    known = set(service.index.manifest)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(args.out, "w", encoding="utf-8") as out:
        for n, item in enumerate(chosen, start=1):
            doc = next(c for c in (item["doc_ids"][0], item["doc_ids"][0] + ".txt") if c in known)
            answer = service.ask(item["question"], documents=[doc])
            right = bool(item["answerable"]) and answer.answerable and contains_any(answer.answer, item["answers"])
            record = {
                "id": item["id"], "answerable": bool(item["answerable"]), "answered": answer.answerable,
                "right": right, "answer": answer.answer, "gold": item["answers"][:3],
                "check": answer.check.model_dump() if answer.check else None,
                "refusal_reason": answer.refusal_reason, "timings_ms": answer.timings_ms.model_dump(),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            print(f"[{n}/{len(chosen)}] {time.perf_counter() - t0:.0f}s {'A' if item['answerable'] else 'U'} "
                  f"{'answered' if answer.answerable else 'refused'} right={right} "
                  f"score={answer.check.score if answer.check else '-'} {item['question'][:60]!r}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- fitting


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> tuple[float, np.ndarray]:
    """L2-regularised logistic regression by Newton's method on standardised features."""
    n, d = x.shape
    xb = np.hstack([np.ones((n, 1)), x])
    w = np.zeros(d + 1)
    reg = np.eye(d + 1) * l2
    reg[0, 0] = 0.0  # the intercept is not shrunk
    for _ in range(steps):
        p = 1 / (1 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + reg @ w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), w[1:]


def cross_validated_scores(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(len(y))
    scores = np.zeros(len(y))
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        b, w = fit_logistic(x[train], y[train])
        scores[test] = 1 / (1 + np.exp(-(b + x[test] @ w)))
    return scores


def curve(records: list[dict], scores: dict[str, float], thresholds: list[float]) -> list[dict]:
    """Refusal of unanswerable items and accuracy on answerable ones, per threshold."""
    rows = []
    unanswerable = [r for r in records if not r["answerable"]]
    answerable = [r for r in records if r["answerable"]]
    for t in thresholds:
        def kept(r: dict) -> bool:
            return r["answered"] and scores.get(r["id"], 1.0) >= t
        refused_un = sum(not kept(r) for r in unanswerable) / max(1, len(unanswerable))
        right_ans = sum(kept(r) and r["right"] for r in answerable) / max(1, len(answerable))
        false_ref = sum(not kept(r) for r in answerable) / max(1, len(answerable))
        rows.append({"threshold": t, "refusal": round(refused_un, 3), "answerable_accuracy": round(right_ans, 3),
                     "false_refusal": round(false_ref, 3), "balanced": round((refused_un + right_ans) / 2, 3)})
    return rows


def _records(path: Path) -> list[dict]:
    """`collect`'s records, or the items of a `footnote eval` report.json run with the check observing."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [{"id": i["id"], "answerable": i["answerable"], "answered": not i["refused"],
                 "right": bool(i["answerable"]) and not i["refused"] and contains_any(i["answer"], i["gold_answers"]),
                 "check": i["check"]} for i in json.loads(text)["items"]]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def fit(args: argparse.Namespace) -> int:
    records = _records(args.data)
    if args.probe_scores:  # out-of-sample probe scores (evals/fit_answer_probe.py crossfit)
        scores = {}
        for path in args.probe_scores.split(","):
            scores.update({r["id"]: r["probe"] for r in map(json.loads, Path(path).read_text().splitlines())})
        for r in records:
            if r["check"]:
                r["check"]["features"]["probe"] = scores[r["id"]]
    checked = [r for r in records if r["check"]]
    features = args.features.split(",") if args.features else list(FEATURES)
    x_raw = np.array([[r["check"]["features"][f] for f in features] for r in checked], dtype=float)
    y = np.array([1.0 if r["right"] else 0.0 for r in checked])
    print(f"{len(records)} items, {len(checked)} answered and checked ({int(y.sum())} right, {int(len(y) - y.sum())} not)")
    for name in [f for f in FEATURES if all(f in r["check"]["features"] for r in checked)]:
        a = auc(np.array([r["check"]["features"][name] for r in checked]), y)
        print(f"  AUC {name:17s} {max(a, 1 - a):.3f}{' (lower is better)' if a < 0.5 else ''}")
    means = x_raw.mean(axis=0)
    scales = np.where(x_raw.std(axis=0) > 1e-6, x_raw.std(axis=0), 1.0)
    x = (x_raw - means) / scales
    cv = cross_validated_scores(x, y)
    print(f"  AUC combined (5-fold cross-validated) {auc(cv, y):.3f}")
    intercept, coefficients = fit_logistic(x, y)
    cv_scores = {r["id"]: float(s) for r, s in zip(checked, cv)}
    thresholds = [round(t, 2) for t in np.arange(0.0, 0.96, 0.05)]
    rows = curve(records, cv_scores, thresholds)
    print("\nthreshold  refusal  answerable_acc  false_refusal  (cross-validated scores)")
    for row in rows:
        print(f"  {row['threshold']:.2f}     {row['refusal']:.3f}    {row['answerable_accuracy']:.3f}          {row['false_refusal']:.3f}")
    best = max(rows, key=lambda r: (r["balanced"], -r["threshold"]))
    print(f"\nbest balanced: threshold {best['threshold']:.2f} (refusal {best['refusal']}, answerable accuracy "
          f"{best['answerable_accuracy']})")
    chosen = args.threshold if args.threshold is not None else best["threshold"]
    weights = {
        "note": f"fitted by evals/fit_answer_check.py on {len(checked)} answered squad2-train items "
                f"({len(records)} asked); cross-validated AUC {auc(cv, y):.3f}"
                + ("; probe scores held out (evals/fit_answer_probe.py crossfit)" if args.probe_scores else ""),
        "intercept": intercept,
        "coefficients": {f: float(c) for f, c in zip(features, coefficients)},
        "means": {f: float(m) for f, m in zip(features, means)},
        "scales": {f: float(s) for f, s in zip(features, scales)},
        "curve": rows,
        "threshold": chosen,
    }
    print(json.dumps({k: weights[k] for k in ("intercept", "coefficients")}, indent=1))
    if args.write:
        target = PROBE_WEIGHTS_FILE if "probe" in features else WEIGHTS_FILE
        target.write_text(json.dumps(weights, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {target}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--docs", type=int, default=50, help="paragraphs to sample")
    c.add_argument("--per-doc", type=int, default=4, help="questions per paragraph (half unanswerable)")
    c.add_argument("--seed", type=int, default=13)
    c.add_argument("--backend", default="embedded")
    c.add_argument("--out", type=Path, default=ROOT / "evals" / "out" / "check-train.jsonl")
    f = sub.add_parser("fit")
    f.add_argument("data", type=Path)
    f.add_argument("--write", action="store_true", help="write service/answer/answer_check.json")
    f.add_argument("--features", default="", help="comma-separated signals to fit on (default: all)")
    f.add_argument("--threshold", type=float, default=None, help="the default operating point to record")
    f.add_argument("--probe-scores", default="", help="comma-separated JSON Lines of {id, probe} that replace "
                   "the probe feature (held-out scores from evals/fit_answer_probe.py crossfit)")
    args = parser.parse_args()
    return collect(args) if args.command == "collect" else fit(args)


if __name__ == "__main__":
    sys.exit(main())
