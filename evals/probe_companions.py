"""Signals measured beside the answerable probe, and not shipped (README, "Signals measured beside
the probe"). Not a test.

    # 1. per question: the model's greedy answer with each written token's log-probability, and
    #    the retrieval scores of its sentences (the probe's 1,500 questions: the same draw as
    #    `fit_answer_probe.py collect --limit 1500`; ~1.1 s a question on 2 cores)
    .venv/bin/python evals/probe_companions.py collect --limit 1500 --out evals/out/companions-train.jsonl
    # 2. each signal's AUC, and the probe's held-out score (fit_answer_probe.py crossfit) with it,
    #    five paragraph folds; with --report, a logistic fit on all of them scores a footnote eval
    #    report's answered questions (their live probe scores) collected likewise
    .venv/bin/python evals/probe_companions.py score evals/out/companions-train.jsonl \
        --probe-scores evals/out/probe-cv.jsonl [--report <set>/report.json <set's companions.jsonl>]

The label is SQuAD's (answerable or not); questions the model answers "NOT FOUND" are left out,
since the probe's companion decides only whether to keep an answer.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals.fit_answer_check import auc, fit_logistic  # noqa: E402
from evals.fit_answer_probe import add_question_arguments, chosen_questions  # noqa: E402

SIGNALS = ("first_p", "first_margin", "first_entropy", "mean_logprob", "min_logprob", "sum_logprob",
           "answer_tokens", "best_dense", "dense_gap", "best_bm25")


def collect(args: argparse.Namespace) -> int:
    from service.llm.embedded import DEFAULT_MODEL_NAME, load_backend
    from service.llm.model_files import ensure_model
    from service.settings import Settings

    settings = Settings()
    service, chosen = chosen_questions(args.dataset, args.docs, args.seed, args.limit)
    backend = load_backend(ensure_model(settings), name=DEFAULT_MODEL_NAME, n_ctx=settings.llm_context_window,
                           threads=settings.llm_threads, timeout_s=300, use_probe=False)
    llm = backend._llm  # noqa: SLF001 - a dev script reads the logits the service never needs
    stops = {llm.token_eos(), *llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}
    t0 = time.perf_counter()
    with args.out.open("w", encoding="utf-8") as out:
        for n, (item, documents) in enumerate(chosen, start=1):
            hits = service.retriever.retrieve(item["question"], settings.top_k, documents)
            prepared = service.prepare(item["question"], documents=documents)
            backend._read_prompt(prepared.messages())  # noqa: SLF001
            pieces, logprobs, first = [], [], {}
            for _ in range(settings.llm_max_tokens):  # greedy, as the service answers
                logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)  # noqa: SLF001
                logp = logits - logits.max()
                logp -= np.log(np.exp(logp).sum())
                token = int(logp.argmax())
                if not first:
                    top = np.sort(logp)[-2:]
                    first = {"first_p": math.exp(top[1]), "first_margin": float(top[1] - top[0]),
                             "first_entropy": float(-(np.exp(logp) * logp).sum())}
                if token in stops:
                    break
                pieces.append(llm.detokenize([token]).decode("utf-8", "replace"))
                logprobs.append(float(logp[token]))
                llm.eval([token])
            dense = sorted((h.dense for h in hits), reverse=True) + [0.0, 0.0]
            row = {"id": item["id"], "answerable": bool(item.get("answerable", True)),
                   "doc": (item.get("doc_ids") or [""])[0], "reply": "".join(pieces),
                   **first, **_answer_signals(pieces, logprobs),
                   "best_dense": dense[0], "dense_gap": dense[0] - dense[1],
                   "best_bm25": math.log1p(max((h.keyword for h in hits), default=0.0))}
            out.write(json.dumps(row) + "\n")
            if n % 100 == 0:
                print(f"[{n}/{len(chosen)}] {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    print(f"wrote {args.out} ({len(chosen)} questions)")
    return 0


def _answer_signals(pieces: list[str], logprobs: list[float]) -> dict[str, float]:
    """Over the answer's words: the tokens before its first "[n]" marker."""
    end = next((i for i, p in enumerate(pieces) if "[" in p), len(pieces))
    words = logprobs[:end] or logprobs[:1] or [0.0]
    return {"mean_logprob": float(np.mean(words)), "min_logprob": float(np.min(words)),
            "sum_logprob": float(np.sum(words)), "answer_tokens": float(len(words))}


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def _answered(rows: list[dict]) -> list[dict]:
    return [r for r in rows if not r["reply"].strip().upper().startswith("NOT FOUND")]


def _matrix(rows: list[dict], probe: dict[str, float], signals: tuple[str, ...]) -> np.ndarray:
    return np.array([[_logit(probe[r["id"]]), *(r[s] for s in signals)] for r in rows])


def _standardised_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    bias, weights = fit_logistic((x - mean) / scale, y, l2=1.0)
    return mean, scale, bias, weights


def score(args: argparse.Namespace) -> int:
    probe = {r["id"]: r["probe"] for r in map(json.loads, args.probe_scores.read_text().splitlines())}
    rows = [r for r in _answered(list(map(json.loads, args.data.read_text().splitlines()))) if r["id"] in probe]
    y = np.array([1.0 if r["answerable"] else 0.0 for r in rows])
    folds = np.array([zlib.crc32(r["doc"].encode()) % 5 for r in rows])
    print(f"{len(rows)} answered questions ({int(y.sum())} answerable) with a held-out probe score")
    print(f"  {'probe':14s} AUC {auc(np.array([probe[r['id']] for r in rows]), y):.3f}")
    for s in SIGNALS:
        print(f"  {s:14s} AUC {auc(np.array([r[s] for r in rows]), y):.3f}")
    print("the probe with each signal, five paragraph folds (AUC; unanswerable refused where 2.5% of answerable are):")
    for signals in [(), *((s,) for s in SIGNALS), SIGNALS]:
        x = _matrix(rows, probe, signals)
        held_out = np.zeros(len(y))
        for fold in range(5):
            test = folds == fold
            mean, scale, bias, weights = _standardised_fit(x[~test], y[~test])
            held_out[test] = bias + ((x[test] - mean) / scale) @ weights
        cut = np.quantile(held_out[y == 1], 0.025)
        line = f"  probe + {'+'.join(signals) or 'nothing':14.60s} AUC {auc(held_out, y):.3f}  refused {np.mean(held_out[y == 0] < cut):.2f}"
        mean, scale, bias, weights = _standardised_fit(x, y)
        for report, companions in args.report:
            items = {i["id"]: i for i in json.loads(Path(report).read_text())["items"]}
            live = {k: (i.get("check") or {}).get("score") for k, i in items.items()}
            rows2 = [r for r in _answered(list(map(json.loads, Path(companions).read_text().splitlines())))
                     if r["id"] in items and not items[r["id"]]["refused"] and live[r["id"]] is not None]
            y2 = np.array([1.0 if r["answerable"] else 0.0 for r in rows2])
            scores = bias + ((_matrix(rows2, live, signals) - mean) / scale) @ weights
            line += f" | {Path(report).parent.name} {auc(scores, y2):.3f}"
        print(line)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = add_question_arguments(sub.add_parser("collect"))
    c.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("score")
    s.add_argument("data", type=Path)
    s.add_argument("--probe-scores", type=Path, required=True, help="fit_answer_probe.py crossfit's output")
    s.add_argument("--report", nargs=2, action="append", default=[], metavar=("REPORT_JSON", "COMPANIONS_JSONL"))
    args = parser.parse_args()
    return {"collect": collect, "score": score}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
