"""Sentence segmentation: exact offsets, hard cases, and an invariant property on random text."""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.ingest.segment import MAX_SENTENCE_TOKENS, segment
from service.tokens import count_tokens


def texts(text: str) -> list[str]:
    return [s.text for s in segment("doc.txt", text)]


def check_invariants(text: str) -> None:
    sentences = segment("doc.txt", text)
    assert [s.sentence for s in sentences] == list(range(1, len(sentences) + 1))
    previous_end = 0
    for s in sentences:
        assert s.document == "doc.txt"
        assert 0 <= s.start < s.end <= len(text)
        assert s.text == text[s.start : s.end]
        assert s.text == s.text.strip()
        assert s.start >= previous_end, "sentences overlap or go backwards"
        previous_end = s.end
    # Nothing but whitespace is lost between the sentences.
    covered = set()
    for s in sentences:
        covered.update(range(s.start, s.end))
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)


# -- abbreviations, numbers, punctuation -----------------------------------------------------


def test_titles_and_country_abbreviations_do_not_end_sentences():
    text = "Mr. Smith went to Washington. He met Dr. Jones there. The U.S. economy grew fast."
    assert texts(text) == [
        "Mr. Smith went to Washington.",
        "He met Dr. Jones there.",
        "The U.S. economy grew fast.",
    ]


def test_time_abbreviation_inside_a_sentence():
    assert texts("The meeting starts at 3 p.m. on Monday. Bring notes.") == [
        "The meeting starts at 3 p.m. on Monday.",
        "Bring notes.",
    ]


def test_decimals_do_not_split():
    assert texts("Prices rose 3.5 percent in May. Oil cost 12.75 dollars.") == [
        "Prices rose 3.5 percent in May.",
        "Oil cost 12.75 dollars.",
    ]


def test_quoted_sentence_keeps_its_closing_quote():
    assert texts('She said "Stop right there." Then she left.') == [
        'She said "Stop right there."',
        "Then she left.",
    ]


def test_ellipsis_inside_a_sentence():
    assert texts("Wait... what happened? Nothing... really.") == [
        "Wait... what happened?",
        "Nothing... really.",
    ]


def test_question_and_exclamation_marks_split():
    assert texts("Is it done? Yes! It is.") == ["Is it done?", "Yes!", "It is."]


# -- blocks: lists, headings, paragraphs -----------------------------------------------------


def test_bullet_and_numbered_items_are_separate_sentences():
    text = "Items:\n- first item\n- second item\n* third item\n1. numbered one\n2) numbered two"
    assert texts(text) == [
        "Items:",
        "- first item",
        "- second item",
        "* third item",
        "1. numbered one",
        "2) numbered two",
    ]


def test_markdown_headings_are_their_own_sentences():
    text = "# Heading one\nSome text here. More text.\n## Sub heading\nBody."
    assert texts(text) == ["# Heading one", "Some text here.", "More text.", "## Sub heading", "Body."]


def test_blank_line_separates_paragraphs_even_without_final_punctuation():
    assert texts("Headline without period\n\nBody text follows here.") == [
        "Headline without period",
        "Body text follows here.",
    ]


def test_single_newline_after_final_punctuation_ends_the_sentence():
    # Without the block cut, syntok would glue a following unpunctuated line to it.
    assert texts("Line ends with a period.\nnext line starts lower case") == [
        "Line ends with a period.",
        "next line starts lower case",
    ]


def test_hard_wrapped_lines_stay_in_one_sentence():
    text = "This sentence is hard\nwrapped across three\nlines and ends here. Next one."
    sentences = segment("doc.txt", text)
    assert [s.text for s in sentences] == [
        "This sentence is hard\nwrapped across three\nlines and ends here.",
        "Next one.",
    ]
    assert sentences[0].start == 0


def test_crlf_line_endings_give_exact_offsets():
    text = "First line here.\r\nSecond line\r\nwraps here.\r\n\r\nThird para.\r\n"
    sentences = segment("doc.txt", text)
    assert [s.text for s in sentences] == ["First line here.", "Second line\r\nwraps here.", "Third para."]
    for s in sentences:
        assert text[s.start : s.end] == s.text
        assert "\r" not in s.text[-1:] and "\n" not in s.text[-1:]


def test_offsets_and_numbering_on_a_mixed_document():
    text = "  # Title\n\nMr. Adams met Dr. Brown.  They talked.\n\n- a point\n"
    sentences = segment("d.md", text)
    assert [(s.sentence, s.text) for s in sentences] == [
        (1, "# Title"),
        (2, "Mr. Adams met Dr. Brown."),
        (3, "They talked."),
        (4, "- a point"),
    ]
    assert sentences[0].start == 2
    check_invariants(text)


def test_empty_and_whitespace_only_text_has_no_sentences():
    assert segment("d", "") == []
    assert segment("d", " \n\r\n\t  \n") == []


# -- property: invariants on random text -----------------------------------------------------

FRAGMENTS = [
    "Mr.", "Mrs.", "Dr.", "U.S.", "p.m.", "a.m.", "e.g.", "i.e.", "etc.", "No.", "3.5", "1.",
    "2)", "-", "*", "+", "•", "#", "##", ">", "|", "...", "…", ".", "!", "?", ";", ":", ",",
    '"', "'", "“", "”", "‘", "’", "(", ")", "[", "]", "hyph-", "word", "Word", "the", "THE",
    "café", "naïve", "Zürich", "東京", "中文。", "русский", "ελληνικά", "🙂", "👍🏽", "e\u0301",
    "\u00a0", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\t", " ", "  ", "\n", "\n\n", "\r\n",
    "\r", "\r\n\r\n", "don't", "U.S.A.", "Inc.", "St.", "vs.", "1,000", "$3.50", "50%", "ß",
    "ﬁ", "İ",  # characters whose case mapping changes length
]

random_text = st.one_of(
    st.lists(
        st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)),
        max_size=60,
    ).map(lambda parts: "".join(parts)),
    st.lists(st.sampled_from(FRAGMENTS), max_size=80).map(" ".join),
    st.text(max_size=200),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_text)
def test_offsets_slice_back_stripped_increasing_numbered(text):
    check_invariants(text)


def test_a_title_line_is_its_own_sentence():
    text = "Pago Pago\nPago Pago is the territorial capital of American Samoa. It is on Tutuila.\n"
    assert [s.text for s in segment("d", text)] == [
        "Pago Pago", "Pago Pago is the territorial capital of American Samoa.", "It is on Tutuila."]


def test_a_wrapped_line_ending_in_a_preposition_is_not_a_title():
    text = "The meeting was held in\nParis on Monday and many people came to see it there.\n"
    assert [s.text for s in segment("d", text)] == [
        "The meeting was held in\nParis on Monday and many people came to see it there."]


# -- scripts syntok does not segment, and text with no sentence marks --------------------------


def test_chinese_and_japanese_full_stops_end_sentences():
    assert texts("北京是中国的首都。上海是最大的城市！你知道吗？东京是日本的首都。") == [
        "北京是中国的首都。", "上海是最大的城市！", "你知道吗？", "东京是日本的首都。",
    ]
    assert texts("標高は3776メートルである。最後の噴火は1707年である。") == [
        "標高は3776メートルである。", "最後の噴火は1707年である。",
    ]


def test_a_full_stop_inside_a_quote_does_not_end_the_sentence_around_it():
    assert texts("「行こう。」と彼は言った。次の日に出発した。") == ["「行こう。」と彼は言った。", "次の日に出発した。"]
    assert texts("他说：“我们走吧。”然后离开了。") == ["他说：“我们走吧。”然后离开了。"]
    assert texts("什么？！真的吗？") == ["什么？！", "真的吗？"]


def test_devanagari_and_arabic_sentence_marks_end_sentences():
    assert texts("हिंदी वाक्य है। दूसरा वाक्य है।") == ["हिंदी वाक्य है।", "दूसरा वाक्य है।"]
    assert texts("هل هذا سؤال؟ نعم هذا سؤال.") == ["هل هذا سؤال؟", "نعم هذا سؤال."]


def test_text_without_sentence_marks_is_cut_at_clause_breaks_within_the_limit():
    clause = "the river rose over the old stone bridge near the mill, "
    text = "Floods came in spring and " + clause * 200 + "and then the water fell."
    pieces = segment("doc.txt", text)
    assert len(pieces) > 1
    assert all(count_tokens(s.text) <= MAX_SENTENCE_TOKENS for s in pieces)
    assert all(s.text.endswith(",") for s in pieces[:-1])  # cut after a clause, not mid-phrase
    check_invariants(text)


def test_a_run_on_text_without_commas_is_cut_between_words():
    text = " ".join(["alpha", "beta", "gamma", "delta"] * 600)
    pieces = segment("doc.txt", text)
    assert len(pieces) > 1 and all(count_tokens(s.text) <= MAX_SENTENCE_TOKENS for s in pieces)
    words = set(text.split())
    assert all(set(s.text.split()) <= words for s in pieces)  # no word cut in two
    check_invariants(text)


def test_chinese_without_any_break_is_cut_by_length_and_accents_stay_on_their_letters():
    cjk = "长城是中国古代的军事防御工程" * 100
    assert all(count_tokens(s.text) <= MAX_SENTENCE_TOKENS for s in segment("doc.txt", cjk))
    check_invariants(cjk)
    accented = "e\u0301" * 2000  # "é" written as a letter and a combining accent
    pieces = segment("doc.txt", accented)
    assert len(pieces) > 1 and all(not unicodedata.combining(s.text[0]) for s in pieces)
    check_invariants(accented)


def test_sentences_under_the_limit_are_untouched():
    text = "A sentence of ordinary length, with a comma; and a semicolon. " * 3
    assert len(texts(text)) == 3


# -- fenced code blocks -------------------------------------------------------------------------


def test_each_line_of_a_fenced_code_block_is_its_own_sentence():
    text = ("Run this:\n\n```bash\nfootnote ingest [--docs DIR]   # index it. Then\n"
            "footnote ask \"Who? [--top-k N]\"\n```\n\nThen ask. It works.\n")
    assert texts(text) == ["Run this:", "```bash", "footnote ingest [--docs DIR]   # index it. Then",
                           'footnote ask "Who? [--top-k N]"', "```", "Then ask.", "It works."]
    check_invariants(text)


def test_a_tilde_fence_closes_only_with_tildes_at_least_as_long():
    text = "~~~~\nx = 1. y = 2.\n~~~\nstill code\n~~~~\nProse again. Yes."
    assert texts(text) == ["~~~~", "x = 1. y = 2.", "~~~", "still code", "~~~~", "Prose again.", "Yes."]


def test_a_fence_never_closed_is_prose():
    text = "```\nThe first line of prose. The second one\ncontinues here.\n"
    # Prose rules hold after it: the hard-wrapped sentence stays whole (code would split it).
    assert texts(text)[-2:] == ["The first line of prose.", "The second one\ncontinues here."]
