"""The answer check: a kept answer is refused when its evidence does not answer *this* question."""

from __future__ import annotations

from service.answer.answerability import (PROBE_WEIGHTS_FILE, WEIGHTS_FILE, AnswerChecker, Weights, lexical_features,
                                          load_weights, refusal_reason)
from service.answer.events import Delta, Done

MELONI = ("Italian Prime Minister Giorgia Meloni affirmed that he will not send troops to Ukraine, but is ready "
          "to participate in supervising the ceasefire and training Ukrainian troops outside the territory.")


def test_a_constraint_of_the_question_missing_from_the_evidence_counts():
    lexical = lexical_features("What did Macron announce on September 5?",
                               ["Macron announced the pledge on September 4 in Paris."])
    assert lexical["facts_missing"] > 0  # "5" is not in the sentence
    full = lexical_features("What did Macron announce on September 4?",
                            ["Macron announced the pledge on September 4 in Paris."])
    assert full["facts_missing"] == 0 and full["question_overlap"] > lexical["question_overlap"] - 0.01


def test_a_refusal_names_what_the_evidence_lacks():
    reason = refusal_reason("Who is the Polish prime minister?", ["Bulgarian Prime Minister Rosen Zhelyazkov said so."])
    assert "'polish'" in reason


def test_the_shipped_score_rises_with_the_model_judgement(scripted):
    weights = load_weights()
    base = {"recheck": 0.9, "judge": 0.9, "facts_missing": 0.0, "question_overlap": 0.8, "similarity": 0.7,
            "reattributed": 0.0, "probe": 0.8}
    model_signal = next(name for name in ("recheck", "judge") if name in weights.coefficients)
    assert weights.score(base) > weights.score({**base, model_signal: 0.1})
    unweighted = next(name for name in base if name not in weights.coefficients)
    assert weights.score(base) == weights.score({**base, unweighted: 0.0})  # a signal the fit left out does not count


def test_the_checker_asks_the_answering_model_and_reports_every_signal(scripted):
    model = scripted(judge_yes=0.2)
    weights = Weights(0.0, {"judge": 1.0}, {"judge": 0.5}, {"judge": 0.1})
    check = AnswerChecker(model, lambda a, b: 0.5, threshold=0.5, weights=weights).check(
        "Which country's leader said he would send troops?", "Giorgia Meloni.", [MELONI], reattributed=False)
    assert not check.passed and check.score < 0.5 and check.judged
    assert set(check.features) == {"recheck", "judge", "facts_missing", "question_overlap", "similarity", "reattributed",
                                   "probe"}
    assert len(model.judged) == 1  # only the signals the weights use cost a model call
    judged = model.judged[0][-1]["content"]
    assert MELONI in judged and "send troops?" in judged and "Giorgia Meloni." in judged


def test_the_recheck_continues_the_answer_conversation(scripted):
    model = scripted(judge_yes=0.9)
    weights = Weights(0.0, {"recheck": 1.0}, {"recheck": 0.5}, {"recheck": 0.1})
    conversation = [{"role": "system", "content": "rules"}, {"role": "user", "content": "[1] ...\n\nQuestion: q?"}]
    check = AnswerChecker(model, lambda a, b: 0.5, threshold=0.5, weights=weights).check(
        "q?", "Giorgia Meloni.", [MELONI], reattributed=False, conversation=conversation, reply="Giorgia Meloni [1].")
    assert check.passed
    (asked,) = model.judged
    assert asked[:2] == conversation and asked[2] == {"role": "assistant", "content": "Giorgia Meloni [1]."}
    assert "yes or no" in asked[3]["content"]


def test_a_check_that_fails_turns_the_answer_into_a_refusal_with_a_reason(make_service, scripted, context_id):
    reply = lambda m: f"Giorgia Meloni [{context_id(m, 'Giorgia Meloni')}]."  # noqa: E731
    question = "Which country's leader said he would send troops?"
    refused = make_service(scripted(reply, judge_yes=0.01), answer_check=True, answer_threshold=0.5).ask(question)
    assert not refused.answerable and refused.citations == []
    assert refused.check is not None and not refused.check.passed
    assert refused.refusal_reason
    kept = make_service(scripted(reply, judge_yes=0.99), answer_check=True, answer_threshold=0.0).ask(question)
    assert kept.answerable and kept.check is not None and kept.check.passed
    off = make_service(scripted(reply, judge_yes=0.01), answer_check=False).ask(question)
    assert off.answerable and off.check is None


def test_a_refused_check_streams_no_part_of_the_answer(make_service, scripted, context_id):
    reply = lambda m: f"Giorgia Meloni [{context_id(m, 'Giorgia Meloni')}]. Italy will train troops [{context_id(m, 'Giorgia Meloni')}]."  # noqa: E731
    events = list(make_service(scripted(reply, judge_yes=0.01), answer_check=True, answer_threshold=0.5)
                  .ask_stream("Who will send troops?"))
    deltas = [e.text for e in events if isinstance(e, Delta)]
    done = events[-1]
    assert isinstance(done, Done) and not done.answer.answerable
    assert deltas == [done.answer.answer]  # only the refusal sentence, never the checked claim


def test_every_refusal_says_why(make_service, scripted):
    answer = make_service(scripted("NOT FOUND")).ask("How many soldiers will France send?")
    assert not answer.answerable and "no answer" in answer.refusal_reason
    far = make_service(scripted("x"), min_relevance=0.99).ask("What is the boiling point of water?")
    assert "nothing in the documents is close" in far.refusal_reason


def test_the_check_reads_the_cited_sentence_with_the_one_that_points_back_at_it(make_service, scripted, context_id):
    question = "Who said that the level of participation of each country still needs to be clarified?"
    name = "President Zelensky stressed"
    reply = lambda m: f"President Zelensky [{context_id(m, name)}]."  # noqa: E731
    model = scripted(reply, judge_yes=0.99)
    answer = make_service(model, answer_check=True, answer_threshold=0.0, context_antecedents=True).ask(question)
    assert answer.answerable and [c.text[: len(name)] for c in answer.citations] == [name]
    judge = next(m for m in model.judged if "Proposed answer" in m[-1]["content"])[-1]["content"]
    text = judge.split("Question:")[0]
    assert name in text and "He said that 26 countries have agreed" in text  # who, then what he said
    assert text.index(name) < text.index("He said that")


def test_strict_mode_combines_the_probe_with_the_judge(make_service, scripted, context_id):
    reply = lambda m: f"Giorgia Meloni [{context_id(m, 'Giorgia Meloni')}]."  # noqa: E731
    question = "Which country's leader said he would send troops?"
    low = make_service(scripted(reply, judge_yes=0.9, answerable=0.15), answer_check=True, answer_threshold=0.0,
                       answerable_threshold=0.1).ask(question)
    high = make_service(scripted(reply, judge_yes=0.9, answerable=0.95), answer_check=True, answer_threshold=0.0,
                        answerable_threshold=0.1).ask(question)
    assert low.check.features["probe"] == 0.15 and high.check.features["probe"] == 0.95
    assert "judge" in low.check.features  # the strict check's own report, with the probe in it
    assert low.check.score < high.check.score  # same judgement, the probe decides
    unprobed = make_service(scripted(reply, judge_yes=0.9), answer_check=True, answer_threshold=0.0).ask(question)
    assert unprobed.check.score == round(load_weights(WEIGHTS_FILE).score(unprobed.check.features), 4)


def test_the_weights_with_the_probe_count_it_and_those_without_do_not():
    assert {"judge", "probe"} <= set(load_weights(PROBE_WEIGHTS_FILE).coefficients)
    assert "probe" not in load_weights(WEIGHTS_FILE).coefficients


def test_a_refusal_never_names_the_question_word_of_another_language():
    sources = ["Самая известная башня Кремля — Спасская башня с курантами."]
    reason = refusal_reason("Кто был первым комендантом Кремля?", sources)
    assert "кто" not in reason and "do not say what it asks" in reason
    assert "'1999'" in refusal_reason("Wer baute das Tor 1999?", ["Das Tor wurde 1791 gebaut."])
