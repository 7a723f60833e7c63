"""Saved prompt states: the longest shared prefix is restored, least recently used first out."""

from __future__ import annotations

import numpy as np
import pytest

from service.llm import prefix_states
from service.llm.prefix_states import PrefixStates, common_prefix


class FakeLlama:
    """What PrefixStates touches on a llama: the live token ids and their count."""

    def __init__(self) -> None:
        self.input_ids = np.zeros(4096, dtype=np.intc)
        self.n_tokens = 0

    def evaluate(self, tokens: list[int]) -> None:
        self.input_ids[: len(tokens)] = tokens
        self.n_tokens = len(tokens)


@pytest.fixture(autouse=True)
def fake_kv(monkeypatch):
    """Snapshots hold the token ids as bytes (1 KB per token), restoring sets them live."""
    monkeypatch.setattr(prefix_states, "_dump", lambda llm: bytes(1024 * llm.n_tokens))

    def load(llm, state):  # noqa: ANN001
        llm.evaluate(list(state.tokens))

    monkeypatch.setattr(prefix_states, "_load", load)


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0


def test_the_state_sharing_the_longest_prefix_is_restored():
    llm, states = FakeLlama(), PrefixStates(10 * 2**20)
    doc_a = list(range(100, 300))
    doc_b = list(range(500, 700))
    for doc, question in ((doc_a, [1, 2]), (doc_b, [3, 4])):
        llm.evaluate(doc + question)
        states.save(llm)
    assert len(states) == 2
    # Live context is doc B; a question about doc A gets doc A's prefix back.
    assert states.restore_best(llm, doc_a + [9, 9]) == len(doc_a)
    assert list(llm.input_ids[: llm.n_tokens]) == doc_a + [1, 2]
    assert states.hits == 1


def test_a_state_that_fails_to_load_is_dropped_and_the_prompt_read_from_scratch(monkeypatch):
    llm, states = FakeLlama(), PrefixStates(10 * 2**20)
    doc = list(range(100, 300))
    llm.evaluate(doc + [1, 2])
    states.save(llm)
    llm.evaluate([5] * 50)

    def failing_load(llm, state):  # noqa: ANN001 - what _load does when llama.cpp refuses the data
        llm.n_tokens = 0
        raise prefix_states.StateError("llama.cpp could not load a saved state")

    monkeypatch.setattr(prefix_states, "_load", failing_load)
    assert states.restore_best(llm, doc + [9]) == 0
    assert llm.n_tokens == 0 and len(states) == 0 and states.hits == 0


def test_nothing_is_restored_when_the_live_context_is_as_good():
    llm, states = FakeLlama(), PrefixStates(10 * 2**20)
    llm.evaluate(list(range(200)))
    states.save(llm)
    assert states.restore_best(llm, list(range(150)) + [7]) == 150
    assert states.hits == 0


def test_the_budget_evicts_the_least_recently_used():
    llm, states = FakeLlama(), PrefixStates(450 * 1024)  # room for two 200-token states
    docs = [list(range(k * 1000, k * 1000 + 200)) for k in range(3)]
    for doc in docs[:2]:
        llm.evaluate(doc)
        states.save(llm)
    llm.evaluate([5] * 10)
    states.restore_best(llm, docs[0] + [1])  # doc 0 used again: doc 1 is now the oldest
    llm.evaluate(docs[2])
    states.save(llm)
    assert len(states) == 2 and states.size_bytes <= states.budget_bytes
    llm.evaluate([5] * 10)
    assert states.restore_best(llm, docs[1] + [1]) == 0  # evicted
    assert states.restore_best(llm, docs[0] + [1]) == 200


def test_a_state_that_is_a_prefix_of_a_newer_one_is_dropped():
    llm, states = FakeLlama(), PrefixStates(10 * 2**20)
    llm.evaluate(list(range(100)))
    states.save(llm)
    llm.evaluate(list(range(150)))
    states.save(llm)
    assert len(states) == 1
