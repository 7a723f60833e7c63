"""Fit the answerable probe on SQuAD 2.0 training questions. Not a test.

    # 1. read the embedded model's hidden states at the end of each question's answer prompt
    #    (its last token; --rows N: the mean over its last N tokens)
    #    (the service's own retrieval and prompt; ~0.5 s a question on 2 cores, ~25 min for all)
    .venv/bin/python evals/fit_answer_probe.py collect --out evals/out/probe-train
    #    (the shipped probe: --limit 1500; other sets: --dataset evals/seeds_gold.jsonl --docs seeds;
    #    --after-answer: at the end of the model's own answer instead, articles held out AUC 0.72;
    #    --ask "<a yes/no question about answerability>": after the user's turn, 0.753 against 0.814)
    # 2. pick the layers by leave-one-article-out AUC (each alone, then the best two together),
    #    fit a logistic regression, print the refusal curve, write service/llm/probes/<model>.npz
    .venv/bin/python evals/fit_answer_probe.py fit evals/out/probe-train [--write]
    # 3. (for evals/fit_answer_check.py) out-of-sample probe scores for every collected question
    .venv/bin/python evals/fit_answer_probe.py crossfit evals/out/probe-train --out evals/out/probe-cv.jsonl \
        [--extra evals/out/probe-sample]   # a sample's own collection, scored by the shipped probe

The label is SQuAD's: answerable or not. Ask each question of its own paragraph only.
squad2-train shares articles with squad2-dev but no paragraph; report on squad2-dev only.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals.fit_answer_check import auc, fit_logistic  # noqa: E402
from service.llm.answerable_probe import Probe, probe_path  # noqa: E402

TRAIN = ROOT.parent / "shared" / "benchmarks" / "squad2-train"
LAYERS = (8, 12, 16, 20, 24, 27)  # of 28 blocks; middle layers tend to carry this best
# --rows 5 averages over the chat template's closing tokens ("<|im_end|>", "\n", "<|im_start|>",
# "assistant", "\n"): measured, not shipped (articles held out AUC 0.810 against 0.815).
ROWS = 1
L2 = (100.0, 1000.0, 3000.0)


def chosen_questions(dataset: Path, docs: Path | None, seed: int, limit: int | None) -> tuple[Any, list[tuple[dict, list[str] | None]]]:
    """The extractive answer service over the set's documents, and the questions to read: a
    paragraph's questions one after another (their prompt prefix is reused), paragraphs shuffled
    by `seed`, the first `limit`; each with the documents it is asked of."""
    from service.evals.dataset import load_dataset
    from service.evals.runner import build_service
    from service.settings import Settings

    items = load_dataset(dataset)
    by_doc: dict[str, list[dict]] = {}
    for item in items:
        by_doc.setdefault((item.get("doc_ids") or [""])[0], []).append(item)
    order = sorted(by_doc)
    random.Random(seed).shuffle(order)
    chosen = [item for doc in order for item in by_doc[doc]][:limit]
    service = build_service(Settings(), docs or dataset.parent / "docs", backend="extractive")
    known = set(service.index.manifest)
    return service, [(item, asked_documents(known, item.get("doc_ids") or [])) for item in chosen]


def asked_documents(known: set[str], ids: list[str]) -> list[str] | None:
    """The index's ids of a question's documents (a set may name them without ".txt"); None (the
    whole corpus) when it names none, as the seed set's items may."""
    return [next((c for c in (d, f"{d}.txt", f"{d}.md") if c in known), d) for d in ids] or None


def add_question_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments `chosen_questions` takes (the probe's 1,500: the defaults and --limit 1500)."""
    parser.add_argument("--dataset", type=Path, default=TRAIN / "qa.jsonl")
    parser.add_argument("--docs", type=Path, default=None, help="its documents (default: docs/ beside it)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=5)
    return parser


def collect(args: argparse.Namespace) -> int:
    from service.llm.embedded import DEFAULT_MODEL_NAME, load_backend
    from service.llm.model_files import ensure_model
    from service.settings import Settings

    settings = Settings()
    service, chosen = chosen_questions(args.dataset, args.docs, args.seed, args.limit)
    model_path = ensure_model(settings)
    backend = load_backend(model_path, name=DEFAULT_MODEL_NAME, n_ctx=settings.llm_context_window,
                           threads=settings.llm_threads, timeout_s=300, use_probe=False, tap=True)
    layers = [int(x) for x in args.layers.split(",")]
    vectors: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
    meta = []
    t0 = time.perf_counter()
    for n, (item, documents) in enumerate(chosen, start=1):
        prepared = service.prepare(item["question"], documents=documents)
        messages = prepared.messages()
        reply = ""
        if args.after_answer:  # the state after the model's own answer instead (measured: weaker)
            reply = backend.generate(messages, max_tokens=settings.llm_max_tokens).text
        if args.ask:  # a question about answerability after the user's (measured: weaker)
            messages[-1] = {"role": "user", "content": messages[-1]["content"] + "\n\n" + args.ask}
        states = backend.hidden_states(messages, layers, reply=reply, rows=args.rows)
        for layer in layers:
            vectors[layer].append(states[layer])
        meta.append({"id": item["id"], "answerable": bool(item.get("answerable", True)),
                     "doc": (item.get("doc_ids") or [""])[0], "relevant": prepared.relevant, "rows": args.rows,
                     **({"reply": reply} if args.after_answer else {}), **({"ask": args.ask} if args.ask else {})})
        if n % 100 == 0:
            print(f"[{n}/{len(chosen)}] {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(f"{args.out}.npz", **{f"l{k}": np.array(v, dtype=np.float32) for k, v in vectors.items()})
    Path(f"{args.out}.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta), encoding="utf-8")
    print(f"wrote {args.out}.npz and {args.out}.jsonl ({len(meta)} questions, {model_path.stem})")
    return 0


def _load(prefix: Path) -> tuple[dict[int, np.ndarray], list[dict]]:
    with np.load(f"{prefix}.npz") as data:
        vectors = {int(k[1:]): data[k].astype(np.float64) for k in data.files}
    meta = [json.loads(line) for line in Path(f"{prefix}.jsonl").read_text(encoding="utf-8").splitlines()]
    return vectors, meta


def _fit(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    bias, weights = fit_logistic((x - mean) / scale, y, l2=l2)
    return mean, scale, weights, bias


def _held_out_scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray, l2: float) -> np.ndarray:
    """Each question scored by a probe fitted without its group."""
    scores = np.zeros(len(y))
    for g in np.unique(groups):
        test = groups == g
        mean, scale, weights, bias = _fit(x[~test], y[~test], l2)
        scores[test] = 1 / (1 + np.exp(-(((x[test] - mean) / scale) @ weights + bias)))
    return scores


def _stack(vectors: dict[int, np.ndarray], layers: tuple[int, ...]) -> np.ndarray:
    return np.hstack([vectors[layer] for layer in layers])


def fit(args: argparse.Namespace) -> int:
    vectors, meta = _load(args.data)
    if args.write and any(m.get("ask") for m in meta):
        raise SystemExit(f"{args.data} was read with --ask, which the service's prompt does not have")
    y = np.array([1.0 if m["answerable"] else 0.0 for m in meta])
    articles = np.array([m["doc"].rsplit("-p", 1)[0] for m in meta])
    print(f"{len(y)} questions ({int(y.sum())} answerable) from {len(set(articles))} articles")

    def sweep(candidates: list[tuple[int, ...]]) -> list[tuple[float, tuple[int, ...], float]]:
        out = []
        for layers in candidates:
            for l2 in L2:
                score = auc(_held_out_scores(_stack(vectors, layers), y, articles, l2), y)
                out.append((score, layers, l2))
                print(f"  layers {','.join(map(str, layers)):8s} l2 {l2:6g}  leave-one-article-out AUC {score:.3f}",
                      flush=True)
        return out

    if args.layers:
        results = sweep([tuple(int(x) for x in args.layers.split(","))])
    else:  # each layer alone, then the two best together
        results = sweep([(layer,) for layer in sorted(vectors)])
        best_two = sorted({r[1][0] for r in sorted(results, reverse=True)}, key=lambda layer: -max(
            r[0] for r in results if r[1] == (layer,)))[:2]
        results += sweep([tuple(sorted(best_two))])
    best, layers, l2 = max(results)
    x = _stack(vectors, layers)
    held_out = _held_out_scores(x, y, articles, l2)
    print(f"\nchosen: layers {layers}, l2 {l2:g} (AUC {best:.3f}); the curve, articles held out:")
    print("  threshold  answerable refused  unanswerable refused")
    for t in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5):
        print(f"  {t:.2f}       {np.mean(held_out[y == 1] < t):.3f}               {np.mean(held_out[y == 0] < t):.3f}")
    mean, scale, weights, bias = _fit(x, y, l2)
    model = args.model
    rows = {int(m.get("rows", 1)) for m in meta}
    if len(rows) != 1:
        raise SystemExit(f"{args.data} mixes readings over different numbers of tokens: {sorted(rows)}")
    probe = Probe(model=model, layers=layers, mean=mean, scale=scale, weights=weights, bias=bias, l2=l2,
                  rows=rows.pop(),
                  note=f"fitted by evals/fit_answer_probe.py on {len(y)} squad2-train questions (SQuAD 2.0, "
                       f"CC BY-SA 4.0); layers {','.join(map(str, layers))}, l2 {l2:g}, "
                       f"leave-one-article-out AUC {best:.3f}")
    if args.write:
        probe.save(probe_path(model))
        print(f"wrote {probe_path(model)}")
    return 0


def crossfit(args: argparse.Namespace) -> int:
    """Scores from probes that never saw the question's paragraph (for fitting the answer check)."""
    from service.llm.answerable_probe import load_probe

    probe = load_probe(args.model)
    if probe is None:
        raise SystemExit(f"no probe for {args.model}; run `fit --write` first")
    vectors, meta = _load(args.data)
    y = np.array([1.0 if m["answerable"] else 0.0 for m in meta])
    paragraphs = np.array([m["doc"] for m in meta])
    folds = np.array([zlib.crc32(p.encode()) % 5 for p in paragraphs])
    scores = _held_out_scores(_stack(vectors, probe.layers), y, folds, probe.l2)
    rows = {m["id"]: round(float(s), 4) for m, s in zip(meta, scores)}
    print(f"{len(rows)} held-out scores (5 paragraph folds), AUC {auc(scores, y):.3f}")
    for extra in args.extra:  # questions the shipped probe never saw: its own scores are held out
        extra_vectors, extra_meta = _load(extra)
        for m, v in zip(extra_meta, _stack(extra_vectors, probe.layers)):
            rows.setdefault(m["id"], round(probe.score(v), 4))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps({"id": k, "probe": v}) + "\n" for k, v in rows.items()), encoding="utf-8")
    print(f"wrote {args.out}: {len(rows)} scores")
    return 0


def main() -> int:
    from service.llm.embedded import DEFAULT_MODEL_NAME

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = add_question_arguments(sub.add_parser("collect"))
    c.add_argument("--layers", default=",".join(map(str, LAYERS)))
    c.add_argument("--out", type=Path, default=ROOT / "evals" / "out" / "probe-train")
    where = c.add_mutually_exclusive_group()
    where.add_argument("--after-answer", action="store_true",
                       help="read the state at the end of the model's own answer, not of the prompt")
    where.add_argument("--ask", default="",
                       help="append this question about answerability to the user's turn and read the state "
                            "there (measured, not shipped; a probe fitted on it cannot be written)")
    c.add_argument("--rows", type=int, default=ROWS,
                   help="average the layers' outputs over the prompt's last N tokens (1: the last token only)")
    for name in ("fit", "crossfit"):
        f = sub.add_parser(name)
        f.add_argument("data", type=Path)
        f.add_argument("--model", default=DEFAULT_MODEL_NAME, help="the GGUF file stem the probe is for")
        if name == "fit":
            f.add_argument("--layers", default="", help="fit on these layers only (comma-separated, concatenated)")
            f.add_argument("--write", action="store_true", help="write service/llm/probes/<model>.npz")
        else:
            f.add_argument("--out", type=Path, default=ROOT / "evals" / "out" / "probe-cv.jsonl")
            f.add_argument("--extra", type=Path, nargs="*", default=[],
                           help="other collections (e.g. of a held-out sample) to score with the shipped probe")
    args = parser.parse_args()
    return {"collect": collect, "fit": fit, "crossfit": crossfit}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
