from service.answer.claims import parse_answer
from service.answer.context import Context
from service.answer.verify import Verifier
from service.records import Sentence

S = [
    Sentence("a.txt", 1, 0, 40, "The bridge opened in May 1932 in Malmo."),
    Sentence("a.txt", 2, 41, 70, "It cost 3 million kronor."),
    Sentence("b.txt", 7, 100, 150, "Anna Berg was the mayor of Malmo at the time."),
]
CTX = Context(S, [0.9, 0.8, 0.7], [0, 1, 2], 60)


def verify(text: str, question: str = "Tell me about the bridge") -> Verifier:
    v = Verifier(CTX, question)
    for claim in parse_answer(text):
        v.add(claim)
    return v


def test_citations_are_renumbered_in_order_of_first_appearance():
    v = verify("It cost 3 million kronor [2]. The bridge opened in May 1932 [1]. It cost 3 million [2].")
    assert [c.sentence for c in v.citations] == [2, 1]
    assert [c.n for c in v.citations] == [1, 2]
    assert v.answer_text == "It cost 3 million kronor [1]. The bridge opened in May 1932 [2]. It cost 3 million [1]."


def test_ids_outside_the_context_are_dropped_and_counted():
    v = verify("The bridge opened in May 1932 [1][9].")
    assert v.stats.invalid_ids == 1
    assert [c.sentence for c in v.citations] == [1]


def test_a_claim_citing_the_wrong_sentence_is_attributed_to_the_right_one():
    v = verify("Anna Berg was the mayor of Malmo [1].")
    assert v.stats.reattributed == 1
    assert [(c.document, c.sentence) for c in v.citations] == [("b.txt", 7)]


def test_a_claim_citing_nothing_is_attributed():
    v = verify("The bridge cost 3 million kronor.")
    assert [c.sentence for c in v.citations] == [2]
    assert v.answer_text.endswith("[1].")


def test_an_unsupported_claim_is_removed_and_the_rest_kept():
    v = verify("The bridge opened in May 1932 [1]. It was designed by Gustave Eiffel [1].")
    assert v.stats.removed == 1 and v.stats.kept == 1
    assert "Eiffel" not in v.answer_text


def test_refusal_phrases_are_not_claims():
    v = verify("NOT FOUND")
    assert v.model_refused and not v.citations and v.stats.claims == 0


def test_citation_text_is_the_source_sentence():
    v = verify("It cost 3 million kronor [2].")
    assert v.citations[0].text == S[1].text
    assert (v.citations[0].start, v.citations[0].end) == (41, 70)


def test_a_bare_marker_quotes_the_sentence_it_points_at():
    v = verify("[2]")
    assert v.answer_text == "It cost 3 million kronor [1]."
    assert [c.sentence for c in v.citations] == [2]
    assert v.stats.quoted == 1


def test_a_claim_that_restates_the_question_quotes_the_sentence_it_cites():
    v = verify("The bridge opened [1].", question="When did the bridge open?")
    assert v.answer_text == "The bridge opened in May 1932 in Malmo [1]."
    assert v.stats.quoted == 1 and v.stats.kept == 1


def test_a_restated_question_its_citation_does_not_say_is_not_quoted():
    v = verify("The council voted [2].", question="When did the council vote?")
    assert v.stats.quoted == 0
    assert "3 million" not in v.answer_text


def test_a_claim_that_answers_is_kept_in_its_own_words():
    v = verify("The bridge opened in May 1932 [1].", question="When did the bridge open?")
    assert v.answer_text == "The bridge opened in May 1932 [1]."
    assert v.stats.quoted == 0


def test_a_bare_marker_outside_the_context_is_nothing():
    v = verify("[7]")
    assert not v.citations and v.stats.invalid_ids == 1


def test_markers_never_land_inside_quotes_or_brackets():
    from service.answer.verify import _with_markers

    assert _with_markers('They met in the "goodwill alliance".', [1]) == 'They met in the "goodwill alliance" [1].'
    assert _with_markers('He said "Stop."', [2]) == 'He said "Stop." [2]'
    assert _with_markers("It was in Milan (Italy)", [1, 3]) == "It was in Milan (Italy) [1][3]."


def test_an_invented_year_is_removed_and_the_rest_kept():
    v = Verifier(CTX, "When did the bridge open?")
    v.add(parse_answer("The bridge opened in May 1932, 1999 [1].")[0])
    assert v.answer_text == "The bridge opened in May 1932 [1]."
    assert v.stats.repaired == 1


def test_a_question_is_not_a_claim():
    v = verify("Why did the bridge open [1]? It cost 3 million kronor [2].")
    assert v.stats.claims == 1 and v.answer_text == "It cost 3 million kronor [1]."


def test_markers_go_before_a_chinese_full_stop():
    sentence = Sentence("zh.txt", 1, 0, 13, "现存的长城大多修建于明朝。")
    v = Verifier(Context([sentence], [0.9], [0], 20), "现存的长城大多修建于哪个朝代？")
    for claim in parse_answer("长城大多修建于明朝。[1]"):
        v.add(claim)
    assert v.answer_text == "长城大多修建于明朝 [1]。"
