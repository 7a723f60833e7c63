"""Saved llama.cpp states, so a prompt that starts like an earlier one skips re-reading it.

llama.cpp keeps one live KV cache: a prompt sharing a prefix with the *previous* prompt reuses
it, but the answer prompt, the answer check and another document's prompt evict each other.
`PrefixStates` keeps a few snapshots of the context (KV cells and token ids) in memory, least
recently used first out, within a byte budget. Before a prompt is evaluated, the snapshot with
the longest common prefix is restored when it beats what is live; llama-cpp-python's own prefix
match then evaluates only the rest. With a whole document in the prompt, a second question
about it costs only the question's tokens.

(llama-cpp-python's `LlamaRAMCache` does this too, but its snapshots carry the logits buffer,
n_batch x vocabulary floats = 311 MB for this model, so a 1 GB budget would hold three.)
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from llama_cpp import Llama

MIN_GAIN_TOKENS = 16  # restoring costs a copy of the KV cells; not worth it for a few tokens


class StateError(RuntimeError):
    """A saved state did not load (the context is left empty)."""


@dataclass
class _State:
    tokens: np.ndarray  # the token ids the state holds, in order
    data: bytes  # llama_state_get_data


def common_prefix(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.nonzero(np.asarray(a[:n]) != np.asarray(b[:n]))[0]
    return int(diff[0]) if len(diff) else n


class PrefixStates:
    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._states: OrderedDict[bytes, _State] = OrderedDict()
        self.hits = 0
        self.saved = 0

    @property
    def size_bytes(self) -> int:
        return sum(len(s.data) for s in self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def restore_best(self, llm: Llama, tokens: Sequence[int]) -> int:
        """Make the live context share the longest prefix with `tokens` that we know of.
        Returns how many leading tokens of the prompt are then already evaluated."""
        live = common_prefix(llm.input_ids[: llm.n_tokens], tokens)
        best_key, best_len = None, live
        for key, state in self._states.items():
            length = common_prefix(state.tokens, tokens)
            if length > best_len:
                best_key, best_len = key, length
        if best_key is None or best_len - live < MIN_GAIN_TOKENS:
            return live
        state = self._states[best_key]
        self._states.move_to_end(best_key)
        try:
            _load(llm, state)
        except StateError:  # the context is empty now: the whole prompt is read again
            del self._states[best_key]
            return 0
        self.hits += 1
        return best_len

    def save(self, llm: Llama, min_tokens: int = 64) -> None:
        """Snapshot the live context (worth it only for prompts that are long and reused)."""
        if self.budget_bytes <= 0 or llm.n_tokens < min_tokens:
            return
        tokens = np.array(llm.input_ids[: llm.n_tokens], dtype=np.intc)
        # A state whose tokens are a prefix of this one is now redundant.
        for key in [k for k, s in self._states.items() if common_prefix(s.tokens, tokens) == len(s.tokens)]:
            del self._states[key]
        state = _State(tokens, _dump(llm))
        if len(state.data) > self.budget_bytes:
            return
        self._states[tokens.tobytes()] = state
        self.saved += 1
        while self.size_bytes > self.budget_bytes:
            self._states.popitem(last=False)

    def clear(self) -> None:
        self._states.clear()


def copy_state(source: Llama, target: Llama) -> None:
    """Give `target` (another context of the same model file) `source`'s evaluated tokens."""
    _load(target, _State(np.array(source.input_ids[: source.n_tokens], dtype=np.intc), _dump(source)))


def _dump(llm: Llama) -> bytes:
    import llama_cpp

    size = llama_cpp.llama_state_get_size(llm.ctx)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_get_data(llm.ctx, buffer, size)
    return ctypes.string_at(buffer, written)  # one copy; bytes(buffer[:n]) builds a list of n ints (~0.2 s for 14 MB)


def _load(llm: Llama, state: _State) -> None:
    import llama_cpp

    buffer = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
    if llama_cpp.llama_state_set_data(llm.ctx, buffer, len(state.data)) == 0:  # llama.cpp logged why
        llm.n_tokens = 0
        raise StateError("llama.cpp could not load a saved state")
    n = len(state.tokens)
    llm.input_ids[:n] = state.tokens
    llm.n_tokens = n
    llm._requires_eval = True  # noqa: SLF001 - logits must come from a fresh decode
