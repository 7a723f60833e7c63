"""Read one transformer layer's output during a llama.cpp decode (for the answerable probe).

llama.cpp calls a context's eval callback for every node of the compute graph: first asking
whether we want that tensor's data, then, for the nodes we said yes to, once it is computed.
`LayerTap` says yes only while `reading()` is active and only for the layers it was asked for
("l_out-N", block N's output), and keeps the last tokens' rows (the last one by default; a
probe may average over the prompt's last few). Outside `reading()` it declines every node, so normal decoding
computes the graph in one piece as before.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np


def _ggml() -> Any:
    from llama_cpp._ggml import libggml

    libggml.ggml_get_name.restype = ctypes.c_char_p
    libggml.ggml_get_name.argtypes = [ctypes.c_void_p]
    libggml.ggml_nelements.restype = ctypes.c_int64
    libggml.ggml_nelements.argtypes = [ctypes.c_void_p]
    libggml.ggml_get_data_f32.restype = ctypes.POINTER(ctypes.c_float)
    libggml.ggml_get_data_f32.argtypes = [ctypes.c_void_p]
    return libggml


class LayerTap:
    def __init__(self, n_embd: int) -> None:
        import llama_cpp.llama_cpp as capi

        self.n_embd = n_embd
        self._ggml = _ggml()
        self._want: dict[bytes, int] = {}  # tensor name -> layer, while reading
        self._rows = 1
        self._kept: dict[int, np.ndarray] = {}  # layer -> its last rows (at most _rows of them)
        # The C side holds only this pointer: keep the ctypes object alive as long as the context.
        self.callback = capi.ggml_backend_sched_eval_callback(self._on_tensor)

    @contextmanager
    def reading(self, layers: Sequence[int], rows: int = 1) -> Iterator[LayerTap]:
        """Within the block, decodes record each layer's output for their last `rows` tokens
        (across batches: a long prompt is decoded in several); `vectors` averages them."""
        self._want, self._rows, self._kept = {f"l_out-{layer}".encode(): layer for layer in layers}, rows, {}
        try:
            yield self
        finally:
            self._want = {}

    @property
    def vectors(self) -> dict[int, np.ndarray]:
        """Each layer's output averaged over the last `rows` tokens read (fewer if fewer were)."""
        return {layer: kept.mean(axis=0) for layer, kept in self._kept.items()}

    def rows_read(self, layer: int) -> int:
        return 0 if layer not in self._kept else len(self._kept[layer])

    def _on_tensor(self, tensor: int, ask: bool, _user_data: int) -> bool:
        # Must not raise: ctypes would print the error and return False, which for a computed
        # node means "abort the graph".
        try:
            if not self._want:
                return not ask  # want nothing; after a compute, go on
            name = self._ggml.ggml_get_name(tensor)
            if ask:
                return name in self._want
            if name in self._want:
                n = int(self._ggml.ggml_nelements(tensor))
                data = np.ctypeslib.as_array(self._ggml.ggml_get_data_f32(tensor), shape=(n,))
                rows = data[max(0, n - self._rows * self.n_embd):].reshape(-1, self.n_embd).astype(np.float64)
                layer = self._want[name]
                if layer in self._kept:  # an earlier batch of the same prompt
                    rows = np.vstack([self._kept[layer], rows])[-self._rows:]
                self._kept[layer] = rows
            return True
        except Exception:  # noqa: BLE001 - see above; the layer is then missing and the probe skipped
            return not ask
