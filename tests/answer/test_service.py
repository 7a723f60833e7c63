"""The answer contract, end to end over the seed index with a scripted model."""

import re

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from service.answer.events import Cited, Delta, Done
from service.llm.base import LLMBusy, LLMCrashed, LLMError, LLMTimeout

Q = "How many countries pledged to guarantee Ukraine's security?"


def check_contract(answer, retrieved_keys, texts, refusal_message):
    """The guarantees every answer object keeps."""
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)]
    if not answer.answerable:
        assert answer.citations == [] and answer.answer == refusal_message
        return
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    first_seen = list(dict.fromkeys(markers))
    assert first_seen == numbers  # every marker has exactly one citation, in order
    for c in answer.citations:
        assert c.text == texts[c.document][c.start : c.end]
        assert f"{c.document}#{c.sentence}" in retrieved_keys


def retrieved(service, question):
    """The sentences shown to the model: the retrieved ones, or the whole documents they are in."""
    return {s.key for s in service.prepare(question).context.sentences}


def test_a_correctly_cited_answer_is_kept(make_service, scripted, context_id):
    model = scripted(lambda m: f"26 countries pledged to ensure Ukraine's security [{context_id(m, '26 countries had pledged')}].")
    service = make_service(model)
    answer = service.ask(Q)
    assert answer.answerable and answer.backend == "openai" and answer.model == "scripted-1"
    assert answer.answer == "26 countries pledged to ensure Ukraine's security [1]."
    assert answer.citations[0].sentence == 1
    check_contract(answer, retrieved(service, Q), service.retriever.index.texts, service.settings.refusal_message)
    assert answer.usage.prompt_tokens == 100


def test_an_invented_answer_is_refused(make_service, scripted):
    service = make_service(scripted("The capital of Bulgaria is Sofia [1]."))
    answer = service.ask("What is the capital of Bulgaria?")
    assert not answer.answerable and answer.citations == []
    assert answer.answer == service.settings.refusal_message
    assert answer.verification.removed == 1


def test_the_model_saying_not_found_is_a_refusal(make_service, scripted):
    answer = make_service(scripted("NOT FOUND")).ask("How many soldiers will France send?")
    assert not answer.answerable and answer.citations == []


def test_irrelevant_questions_are_refused_without_calling_the_model(make_service, scripted):
    model = scripted("anything")
    answer = make_service(model, min_relevance=0.99).ask("What is the boiling point of water?")
    assert not answer.answerable and model.calls == []


def test_backend_failure_falls_back_to_extractive(make_service, scripted):
    answer = make_service(scripted(fail=LLMTimeout("too slow"))).ask(Q)
    assert answer.backend == "extractive" and answer.answerable
    assert answer.warnings and "too slow" in answer.warnings[0]
    assert "26 countries" in answer.citations[0].text


def test_backend_failure_without_fallback_is_an_error(make_service, scripted):
    with pytest.raises(LLMError):
        make_service(scripted(fail=LLMError("down")), llm_fallback=False).ask(Q)


def test_a_busy_backend_is_not_hidden_by_the_fallback(make_service, scripted):
    with pytest.raises(LLMBusy):
        make_service(scripted(fail=LLMBusy("queue full"))).ask(Q)


def test_stream_sends_each_citation_once_before_its_marker_and_done_matches(make_service, scripted, context_id):
    def reply(m):
        a, b = context_id(m, "26 countries had pledged"), context_id(m, "Many countries will send forces")
        return (f"Macron said 26 countries pledged to ensure Ukraine's security [{a}]. "
                f"Many countries will send forces on land, sea and air to Ukraine [{b}]. Macron said so again [{a}].")

    service = make_service(scripted(reply))
    events = list(service.ask_stream(Q))
    seen, text = set(), ""
    for event in events:
        if isinstance(event, Cited):
            assert event.citation.n not in seen
            seen.add(event.citation.n)
        elif isinstance(event, Delta):
            text += event.text
            assert {int(n) for n in re.findall(r"\[(\d+)\]", text)} <= seen
    assert isinstance(events[-1], Done) and [isinstance(e, Done) for e in events].count(True) == 1
    done = events[-1].answer
    assert done.answer == text and len(done.citations) == 2
    assert done.model_dump(exclude={"timings_ms"}) == service.ask(Q).model_dump(exclude={"timings_ms"})


def test_a_closed_sentence_is_shown_before_the_model_has_finished(make_service, scripted, context_id):
    class Watched(scripted):
        finished = False

        def stream(self, messages, *, max_tokens, stop=None):  # noqa: ANN001, ANN202
            for item in super().stream(messages, max_tokens=max_tokens, stop=stop):
                self.finished = not isinstance(item, str)  # its Generation: the model is done
                yield item

    model = Watched(lambda m: f"26 countries pledged to ensure Ukraine's security [{context_id(m, '26 countries had pledged')}].",
                    chunk=4)
    shown = [(event.text, model.finished) for event in make_service(model).ask_stream(Q) if isinstance(event, Delta)]
    assert shown == [("26 countries pledged to ensure Ukraine's security [1].", False)]


def test_closing_the_stream_early_closes_the_model_stream(make_service, scripted):
    model = scripted("26 countries had pledged to ensure Ukraine's security [1]. " * 5, chunk=3)
    stream = make_service(model).ask_stream(Q)
    next(stream)
    stream.close()
    assert model.closed


def test_extractive_backend_answers_with_the_best_sentence(make_service):
    service = make_service()
    answer = service.ask(Q, backend="extractive")
    assert answer.backend == "extractive" and answer.citations[0].sentence == 1
    check_contract(answer, retrieved(service, Q), service.retriever.index.texts, service.settings.refusal_message)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(st.tuples(st.integers(0, 20), st.lists(st.integers(-2, 14), max_size=3),
                             st.sampled_from(["", "Sofia", "in 1999", "twenty"])), max_size=4),
    junk=st.text(max_size=30),
)
def test_whatever_the_model_says_the_contract_holds(make_service, scripted, picks, junk):
    """Random mixes of real sentences, made-up facts, bad ids and junk never break the contract."""
    def reply(messages):
        lines = [l for l in messages[-1]["content"].splitlines() if l.startswith("[")]
        parts = []
        for idx, ids, extra in picks:
            base = lines[idx % len(lines)].split("] ", 1)[1].rstrip(".") if lines else "Nothing"
            parts.append(f"{base} {extra}".strip() + "".join(f"[{i}]" for i in ids) + ".")
        return " ".join(parts) + " " + junk

    service = make_service(scripted(reply))
    answer = service.ask(Q)
    check_contract(answer, retrieved(service, Q), service.retriever.index.texts, service.settings.refusal_message)


def test_questions_are_stripped_and_bounded():
    from service.answer.service import InvalidQuestion, clean_question

    assert clean_question("  Who?  \n", 10) == "Who?"
    with pytest.raises(InvalidQuestion, match="empty"):
        clean_question(" \t\n", 10)
    with pytest.raises(InvalidQuestion, match="limit is 5"):
        clean_question("too long a question", 5)


def test_prompt_tokens_counts_the_prompt_the_model_is_sent(make_service, scripted):
    from service.tokens import count_tokens

    model = scripted("26 countries had pledged to ensure Ukraine's security [1].")
    service = make_service(model)
    service.ask(Q)
    (sent,) = model.calls
    assert service.prompt_tokens(Q) == sum(count_tokens(m["content"]) for m in sent) > 0
    assert make_service(model, min_relevance=0.99).prompt_tokens("What is the boiling point of water?") == 0


def test_only_backends_the_operator_enabled_can_be_chosen(seed_retriever, seed_settings):
    from service.answer.service import AnswerService, BackendNotAllowed

    asked: list[str] = []
    settings = seed_settings.model_copy(update={"llm": "extractive", "allowed_backends": ""})
    service = AnswerService(seed_retriever, settings, lambda name: asked.append(name))
    for name in ("embedded", "openai"):
        with pytest.raises(BackendNotAllowed, match="choose one of extractive"):
            service.ask(Q, backend=name)
        with pytest.raises(BackendNotAllowed):
            service.backend(name)
        with pytest.raises(BackendNotAllowed):  # the chat follow-up rewrite too
            service.standalone_question([{"role": "user", "content": "Hi"}, {"role": "user", "content": Q}], name)
    assert asked == [] and service.ask(Q).backend == "extractive"


@pytest.mark.parametrize("question", ["?!", "...", "\u200b\u200b", " ?\u200d¿ ", "—"])
def test_a_question_without_letters_or_digits_is_empty(question):
    from service.answer.service import InvalidQuestion, clean_question

    with pytest.raises(InvalidQuestion, match="empty"):
        clean_question(question, 2000)
    assert clean_question(" Où? ", 2000) == "Où?" and clean_question("2+2?", 2000) == "2+2?"


def test_antecedents_setting_brings_the_sentence_a_retrieved_one_points_back_to(make_service):
    question = "Who said that the level of participation of each country still needs to be clarified?"
    plain = make_service(None, top_k=3).prepare(question).context.sentences
    he = next(s for s in plain if s.text.startswith("He said that 26 countries"))
    with_antecedents = make_service(None, top_k=3, context_antecedents=True).prepare(question).context.sentences
    assert he.sentence - 1 not in {s.sentence for s in plain}
    assert [s.sentence for s in with_antecedents if s.sentence in (he.sentence - 1, he.sentence)] == [he.sentence - 1, he.sentence]


def test_a_question_the_probe_reads_as_unanswerable_is_refused_before_the_model_writes(make_service, scripted, context_id):
    model = scripted(lambda m: f"26 countries pledged [{context_id(m, '26 countries had pledged')}].", answerable=0.05)
    answer = make_service(model, answerable_threshold=0.1).ask(Q)
    assert not answer.answerable and answer.citations == []
    assert model.calls == []  # nothing generated
    assert len(model.probed) == 1 and Q in model.probed[0][-1]["content"]  # the answer prompt itself
    assert answer.check is not None and answer.check.features == {"probe": 0.05} and not answer.check.passed
    assert answer.refusal_reason and "closest sentences" in answer.refusal_reason


def test_a_question_the_probe_passes_is_answered_and_carries_its_score(make_service, scripted, context_id):
    model = scripted(lambda m: f"26 countries pledged [{context_id(m, '26 countries had pledged')}].", answerable=0.6)
    answer = make_service(model, answerable_threshold=0.1).ask(Q)
    assert answer.answerable and answer.check is not None and answer.check.passed
    assert answer.check.score == 0.6 and answer.check.threshold == 0.1
    assert model.probed[0] == model.calls[0]  # the probe read the prompt the answer is written from


def test_without_a_probe_or_when_it_fails_the_answer_goes_on(make_service, scripted, context_id):
    def reply(m):
        return f"26 countries pledged [{context_id(m, '26 countries had pledged')}]."

    for probe in (None, LLMError("the local model failed while reading the prompt")):
        answer = make_service(scripted(reply, answerable=probe), answerable_threshold=0.9).ask(Q)
        assert answer.answerable and answer.check is None


def test_a_crashed_model_during_the_probe_is_not_hidden(make_service, scripted):
    with pytest.raises(LLMCrashed):
        make_service(scripted("x", answerable=LLMCrashed("restarting"))).ask(Q)
