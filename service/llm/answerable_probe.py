"""Does the model itself "know" that the sentences do not answer the question? A linear probe.

SQuAD 2.0's look-alike questions fool the model's *output*: it copies a plausible span, and
asked "NOT FOUND or an answer?" its first-token probabilities barely separate the two (AUC
0.59). Its *hidden state* does better: a logistic regression over the activations of two middle
layers, read at the last prompt token (just before the model writes its answer), separates
answerable from unanswerable questions with an AUC of ~0.8 on SQuAD articles held out of the fit.
Reading it costs one token's forward pass, and a question it turns down needs no generation.

The weights are fitted on ../shared/benchmarks/squad2-train by `evals/fit_answer_probe.py` and
ship as `service/llm/probes/<model file stem>.npz`; they belong to that model file only (another
model has other activations), so a model without a probe file simply has no probe.
Data: SQuAD 2.0 (Rajpurkar, Jia & Liang 2018), CC BY-SA 4.0 — the fitted weights are derived from it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROBES_DIR = Path(__file__).with_name("probes")


@dataclass(frozen=True)
class Probe:
    model: str  # the GGUF file stem the activations come from
    layers: tuple[int, ...]  # these transformer blocks' outputs (llama.cpp's "l_out-N"), concatenated
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    l2: float = 0.0  # the regularisation it was fitted with (refits reuse it)
    note: str = ""
    rows: int = 1  # the layers' outputs averaged over the prompt's last `rows` tokens (1: the last)

    def score(self, hidden: np.ndarray) -> float:
        """P(answerable) for one hidden-state vector (the layers' outputs, concatenated in order)."""
        z = float(((hidden - self.mean) / self.scale) @ self.weights + self.bias)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"model": self.model, "layers": list(self.layers), "bias": self.bias, "l2": self.l2,
                           "note": self.note, "rows": self.rows})
        with open(path, "wb") as f:  # np.savez appends ".npz" to a str path; a file object keeps the name
            np.savez_compressed(f, mean=self.mean.astype(np.float32), scale=self.scale.astype(np.float32),
                                weights=self.weights.astype(np.float32), meta=np.array(meta))


def probe_path(model: str) -> Path:
    return PROBES_DIR / f"{model}.npz"


def load_probe(model: str, path: Path | None = None) -> Probe | None:
    """The probe fitted for `model` (a GGUF file stem), or None when there is none."""
    path = path or probe_path(model)
    if not path.is_file():
        return None
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        if meta["model"] != model:
            return None
        return Probe(model=meta["model"], layers=tuple(int(x) for x in meta["layers"]), mean=data["mean"].astype(np.float64),
                     scale=data["scale"].astype(np.float64), weights=data["weights"].astype(np.float64),
                     bias=float(meta["bias"]), l2=float(meta.get("l2", 0.0)), note=str(meta.get("note", "")),
                     rows=int(meta.get("rows", 1)))
