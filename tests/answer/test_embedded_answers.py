"""End to end with the real embedded model: one answerable seed question, one that is not."""

from __future__ import annotations

import pytest

from service.answer.service import AnswerService

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def embedded_service(seed_retriever, seed_settings, embedded_backend) -> AnswerService:
    settings = seed_settings.model_copy(update={"llm": "embedded", "llm_fallback": False})
    return AnswerService(seed_retriever, settings, lambda name: embedded_backend)


def test_answers_a_seed_question_with_the_right_citation(embedded_service):
    answer = embedded_service.ask("How many countries pledged to ensure Ukraine's security after the conflict ended?")
    assert answer.backend == "embedded" and answer.answerable
    assert "26" in answer.answer
    assert answer.citations[0].text.startswith("French President Emmanuel Macron said the 26 countries")
    assert answer.usage.prompt_tokens > 100 and answer.usage.completion_tokens > 0


def test_refuses_what_the_documents_do_not_say(embedded_service):
    answer = embedded_service.ask("What is the capital of Bulgaria?")
    assert not answer.answerable and answer.citations == []
    assert answer.answer == embedded_service.settings.refusal_message
