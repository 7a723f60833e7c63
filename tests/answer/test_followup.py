"""service/answer/followup.py: follow-ups made standalone, by the model or heuristically."""

from __future__ import annotations

import pytest

from service.answer.followup import heuristic, resolve, standalone_question
from service.llm.base import Generation, LLMError


def convo(*turns: str) -> list[dict]:
    """Alternating user/assistant turns, starting with the user."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


@pytest.mark.parametrize("previous, question, expected", [
    ("Who is the Prime Minister of Italy?", "And Bulgaria?", "Who is the Prime Minister of Bulgaria?"),
    ("Will Italy send troops to Ukraine?", "what about the UK?", "Will the UK send troops to Ukraine?"),
    ("What did Germany say about military commitments?", "How about France", "What did France say about military commitments?"),
    ("What did Macron say?", "Germany?", "What did Germany say?"),
    ("How many countries pledged to ensure Ukraine's security?", "And when?",
     "How many countries pledged to ensure Ukraine's security? And when?"),
    ("What did Macron say?", "Why?", "What did Macron say? Why?"),
    ("What did Macron say", "When did he say it?", "What did Macron say? When did he say it?"),
    ("what did the summit decide?", "and the soldiers?", "what did the summit decide? And the soldiers?"),
    # standalone questions stay as they are
    ("What did Macron say?", "Where was the joint press conference held?", "Where was the joint press conference held?"),
    ("Who is the PM of Bulgaria?", "And how many soldiers did Italy pledge?", "And how many soldiers did Italy pledge?"),
])
def test_heuristic_resolution(previous, question, expected):
    assert resolve(previous, question) == expected


def test_a_chain_of_follow_ups_resolves_turn_by_turn():
    turns = convo("Who is the Prime Minister of Italy?", "Giorgia Meloni [1].", "And Bulgaria?", "Rosen Zhelyazkov [1].",
                  "what about Germany")
    assert heuristic(turns) == "Who is the Prime Minister of Germany?"


def test_a_joined_question_that_would_be_too_long_is_left_alone():
    assert resolve("x" * 50 + "?", "Why?", max_chars=40) == "Why?"


class Model:
    name, model = "fake", "fake-1"

    def __init__(self, reply: str = "", fail: Exception | None = None) -> None:
        self.reply, self.fail, self.calls = reply, fail, []

    def generate(self, messages, *, max_tokens, stop=None):  # noqa: ANN001, ANN201
        self.calls.append((messages, max_tokens, stop))
        if self.fail:
            raise self.fail
        return Generation(self.reply, self.model)


def test_the_first_question_is_not_rewritten_and_the_model_is_not_asked():
    model = Model("something else")
    result = standalone_question(convo("  What did Macron say? "), model)
    assert (result.question, result.method) == ("What did Macron say?", "none") and model.calls == []


def test_the_model_rewrites_with_the_prompt_file_and_its_answer_is_cleaned():
    model = Model('Standalone question: "What did Germany say about military commitments?"\nextra')
    turns = convo("What did France say about military commitments?", "France will deploy forces [2].", "and germany")
    result = standalone_question(turns, model)
    assert (result.question, result.method, result.warning) == (
        "What did Germany say about military commitments?", "llm", None)
    messages, max_tokens, stop = model.calls[0]
    prompt = messages[0]["content"]
    assert "User: What did France say about military commitments?" in prompt
    assert "Assistant: France will deploy forces." in prompt  # citation markers removed
    assert prompt.rstrip().endswith("Last question: and germany\nStandalone question:")
    assert max_tokens <= 64 and stop == ["\n"]


def test_only_recent_turns_go_into_the_prompt_and_long_turns_are_cut():
    model = Model("Q?")
    turns = convo(*[f"question {i} " + "x" * 1000 for i in range(9)])
    standalone_question(turns, model)
    prompt = model.calls[0][0][0]["content"]
    # 8 earlier turns (0..7): the last six (2..7) are shown
    assert "question 1 " not in prompt and "question 2 " in prompt
    history = [line for line in prompt.splitlines() if line.startswith(("User: question", "Assistant: question"))]
    assert len(history) == 6 and all(len(line) < 420 and line.endswith("…") for line in history)


@pytest.mark.parametrize("model, warning", [
    (Model(fail=LLMError("model offline")), "model offline"),
    (Model(""), "unusable"),
    (Model("NOT FOUND"), "unusable"),
])
def test_a_failed_or_unusable_rewrite_falls_back_to_the_heuristic(model, warning):
    result = standalone_question(convo("Who is the Prime Minister of Italy?", "Meloni [1].", "And Bulgaria?"), model)
    assert (result.question, result.method) == ("Who is the Prime Minister of Bulgaria?", "heuristic")
    assert warning in result.warning


def test_system_turns_and_trailing_assistant_turns_are_ignored():
    messages = [{"role": "system", "content": "Be brief."}, *convo("Who is the Prime Minister of Italy?", "Meloni.",
                                                                  "And Bulgaria?", "Rosen")]
    assert standalone_question(messages).question == "Who is the Prime Minister of Bulgaria?"


def test_a_conversation_without_a_user_message_is_an_error():
    with pytest.raises(ValueError, match="no user message"):
        standalone_question([{"role": "system", "content": "hi"}])


def test_every_marker_form_is_removed_from_the_history_shown_to_the_model():
    model = Model("What did Germany say?")
    turns = convo("What did France say?", "France will deploy [1, 2] forces [3][4] on land [1-2].", "and germany")
    standalone_question(turns, model)
    assert "Assistant: France will deploy forces on land." in model.calls[0][0][0]["content"]


# ---- AnswerService.standalone_question: which model rewrites, and what happens when it can't ----

FOLLOW_UP = convo("Who is the Prime Minister of Italy?", "Meloni [1].", "And Bulgaria?")


def service_with(seed_retriever, seed_settings, factory, llm="openai"):  # noqa: ANN001, ANN201
    from service.answer.service import AnswerService

    return AnswerService(seed_retriever, seed_settings.model_copy(update={"llm": llm}), factory)


def test_the_answering_model_rewrites_a_follow_up(seed_retriever, seed_settings):
    model = Model("Who is the Prime Minister of Bulgaria?")
    asked: list[str] = []
    service = service_with(seed_retriever, seed_settings, lambda name: asked.append(name) or model)
    result = service.standalone_question(FOLLOW_UP)
    assert (result.question, result.method, asked) == ("Who is the Prime Minister of Bulgaria?", "llm", ["openai"])


def test_a_backend_without_a_model_rewrites_heuristically(seed_retriever, seed_settings):
    service = service_with(seed_retriever, seed_settings, lambda name: pytest.fail("a model was loaded"))
    result = service.standalone_question(FOLLOW_UP, "extractive")
    assert (result.question, result.method, result.warning) == (
        "Who is the Prime Minister of Bulgaria?", "heuristic", None)


def test_a_backend_that_cannot_load_rewrites_heuristically_and_says_why(seed_retriever, seed_settings):
    def factory(name):  # noqa: ANN001, ANN202
        raise LLMError("no model files")

    result = service_with(seed_retriever, seed_settings, factory).standalone_question(FOLLOW_UP)
    assert (result.question, result.method) == ("Who is the Prime Minister of Bulgaria?", "heuristic")
    assert result.warning == "the openai backend could not rewrite the follow-up (no model files)"


def test_a_first_question_loads_no_model(seed_retriever, seed_settings):
    service = service_with(seed_retriever, seed_settings, lambda name: pytest.fail("a model was loaded"))
    assert service.standalone_question(convo("What did Macron say?")).method == "none"
