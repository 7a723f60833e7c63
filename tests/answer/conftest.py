"""Fixtures for the answer pipeline: the seed index and a scripted fake model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.answer.service import AnswerService
from service.llm.base import ChatMessage, Generation



class ScriptedModel:
    """A fake LLM that answers from a script: a fixed string or a function of the prompt."""

    name = "scripted"
    model = "scripted-1"

    def __init__(self, reply="", fail: Exception | None = None, chunk: int = 7, judge_yes: float = 0.95,
                 answerable: float | None = None) -> None:
        self.reply = reply
        self.answerable = answerable  # what the answerable probe reads (None: no probe)
        self.probed: list[list[ChatMessage]] = []
        self.fail = fail
        self.chunk = chunk
        self.judge_yes = judge_yes  # what the answer check's yes/no question gets
        self.calls: list[list[ChatMessage]] = []
        self.judged: list[list[ChatMessage]] = []
        self.closed = False

    def answerability(self, messages) -> float | None:  # noqa: ANN001
        self.probed.append(messages)
        if isinstance(self.answerable, Exception):
            raise self.answerable
        return self.answerable

    def choice_probabilities(self, messages, options) -> dict[str, float]:  # noqa: ANN001
        self.judged.append(messages)
        return {"yes": self.judge_yes, "no": 1 - self.judge_yes}

    def unavailable(self) -> str | None:
        return None

    def _text(self, messages: list[ChatMessage]) -> str:
        self.calls.append(messages)
        if self.fail:
            raise self.fail
        return self.reply(messages) if callable(self.reply) else self.reply

    def generate(self, messages, *, max_tokens, stop=None) -> Generation:
        return Generation(self._text(messages), self.model, 100, 10)

    def stream(self, messages, *, max_tokens, stop=None) -> Iterator[str | Generation]:
        text = self._text(messages)
        try:
            for i in range(0, len(text), self.chunk):
                yield text[i : i + self.chunk]
            yield Generation(text, self.model, 100, len(text) // 4)
        finally:
            self.closed = True


@pytest.fixture()
def make_service(seed_retriever, seed_settings):
    """make_service(model, **setting_overrides) -> (AnswerService, model)."""

    def make(model: ScriptedModel | None = None, **overrides) -> AnswerService:
        settings = seed_settings.model_copy(update={"llm": "openai", **overrides})
        fake = model or ScriptedModel()
        return AnswerService(seed_retriever, settings, lambda name: fake)

    return make


def context_id_of(messages: list[ChatMessage], fragment: str) -> int:
    """The [n] the prompt gave to the context sentence containing `fragment`."""
    for line in messages[-1]["content"].splitlines():
        if line.startswith("[") and fragment in line:
            return int(line[1 : line.index("]")])
    raise AssertionError(f"no context sentence contains {fragment!r}")


@pytest.fixture()
def scripted():
    """The ScriptedModel class, to build fakes inside tests."""
    return ScriptedModel


@pytest.fixture()
def context_id():
    return context_id_of
