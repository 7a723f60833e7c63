"""The dev script that measures signals beside the answerable probe: how it reads an answer."""

from __future__ import annotations

import pytest

from evals.probe_companions import _answer_signals, _answered


def test_answer_signals_are_read_over_the_words_before_the_first_marker() -> None:
    pieces = ["Paris", " in", " 1998", " [", "2", "]."]
    logprobs = [-0.5, -0.1, -1.5, -0.01, -0.01, -0.2]
    signals = _answer_signals(pieces, logprobs)
    assert signals["answer_tokens"] == 3
    assert signals["min_logprob"] == -1.5
    assert signals["sum_logprob"] == pytest.approx(-2.1)
    assert signals["mean_logprob"] == pytest.approx(-0.7)


def test_an_answer_that_starts_with_its_marker_is_read_at_its_first_token() -> None:
    assert _answer_signals(["[", "1", "]"], [-0.3, -0.1, -0.1])["answer_tokens"] == 1


def test_the_models_refusals_are_left_out() -> None:
    rows = [{"reply": "NOT FOUND"}, {"reply": " not found."}, {"reply": "Paris [1]."}]
    assert _answered(rows) == [{"reply": "Paris [1]."}]
