import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.answer.support import WORD, check, facts, question_facts, restates_question, word_tokens

MELONI = ("Italian Prime Minister Giorgia Meloni affirmed that he will not send troops to Ukraine, but is "
          "ready to participate in supervising the ceasefire and training Ukrainian troops outside the territory.")
BULGARIA = ("Bulgarian Prime Minister Rosen Zhelyazkov said the country has no plans to send troops to Ukraine, "
            "but could participate in activities to search for ice in the Black Sea.")
PARIS = ("He made the statement at a joint press conference with Ukrainian President Volodymyr Zelensky at the "
         "Elysee Palace in Paris on September 4, after a summit of leaders of 35 countries in the \"goodwill alliance\".")


def test_facts_are_numbers_and_names():
    f = facts("Leaders of 35 countries met Volodymyr Zelensky in Paris.")
    assert f.numbers == {"35"}
    assert {"volodymyr", "zelensky", "paris", "leaders"} >= f.names >= {"volodymyr", "zelensky", "paris"}


def test_a_common_word_opening_the_claim_is_not_a_name_to_find():
    source = "Pharmacists may also be small-business proprietors, owning the pharmacy in which they practice."
    claim = "Many pharmacists are small-business proprietors, owning the pharmacy in which they practice."
    assert check(claim, [source], "What other role do many pharmacists play?").supported
    assert "many" in facts(claim).names  # ...but with nothing written in lower case, it might be one


def test_a_name_opening_the_claim_is_still_a_name():
    assert not check("Sofia is the capital.", ["The capital of Bulgaria was chosen in 1879."], "Which city is the capital?").supported


def test_a_yes_or_no_answer_is_checked_by_what_follows_it():
    question = "Did Meloni say Italy would send troops to Ukraine?"
    assert check("No, Meloni said Italy will not send troops to Ukraine.", [MELONI], question).supported
    question = "Is Meloni ready to help train Ukrainian troops?"
    assert check("Yes, Meloni is ready to train Ukrainian troops.", [MELONI], question).supported
    assert not check("Yes, Meloni will train troops in Poland.", [MELONI], question).supported  # Poland: not said


@pytest.mark.parametrize(
    "claim, question",
    [
        ("The capital of Bulgaria is Sofia.", "What is the capital of Bulgaria?"),  # a name from memory
        ("Joe Biden attended the conference.", "Who attended?"),
        ("The press conference was held on September 4, 2024.", "When was it?"),  # an invented year
        ("Leaders of 36 countries attended.", "How many?"),  # a wrong number
    ],
)
def test_invented_facts_are_not_supported(claim, question):
    result = check(claim, [BULGARIA, PARIS], question)
    assert not result.supported
    assert result.missing_facts


def test_inflected_names_match_their_source():
    assert check("Italy will not send troops to Ukraine.", [MELONI], "Will Italy send troops?").supported


def test_a_faithful_paraphrase_is_supported():
    claim = "Giorgia Meloni will not send troops but will help supervise the ceasefire."
    assert check(claim, [MELONI], "Who will not send troops?").supported


def test_no_sources_supports_nothing():
    assert not check("Paris.", [], "Where?").supported


def test_words_that_only_echo_the_question_do_not_count_as_evidence():
    # Every content word comes from the question; nothing ties it to the source.
    result = check("Guarantees were discussed.", [BULGARIA], "Were guarantees discussed?")
    assert not result.supported


@pytest.mark.parametrize("claim, question", [
    ("The Arab oil producers lifted the embargo.", "When did the Arab oil producers lift the embargo?"),
    ("26 countries pledged to ensure Ukraine's security.", "Which 26 countries pledged to ensure Ukraine's security?"),
    ("High fevers.", "How high of a fever does someone suffering from septicemic plague have?"),
])
def test_a_claim_that_says_the_question_back_restates_it(claim, question):
    assert restates_question(claim, question)


@pytest.mark.parametrize("claim, question", [
    ("The embargo was lifted in March 1974.", "When did the Arab oil producers lift the embargo?"),
    ("27 countries pledged.", "How many countries pledged?"),  # a number the question lacks
    ("Amazoneregenwoud.", "What is the Dutch word for the Amazon rainforest?"),  # not a mere prefix
    ("French calls the Rhine Rhin.", "What is the Rhine called in French?"),  # "Rhin" is not "Rhine"
    ("Macron announced the deployment.", "Did Macron announce the deployment?"),  # yes/no: restating is "yes"
    ("Duran Duran formed first.", "Which band formed first, Duran Duran or The Fratellis?"),  # a choice
    ("No, the mayor opened it.", "Who opened it?"),
    ("", "Who opened it?"),
])
def test_a_claim_that_adds_an_answer_does_not_restate_the_question(claim, question):
    assert not restates_question(claim, question)


# -- other languages ----------------------------------------------------------------------------


def test_accented_words_are_whole_words_and_match_without_their_accents():
    assert WORD.findall("Müller’s Élysée 3,000") == ["Müller’s", "Élysée", "3,000"]
    source = "They met at the Élysée Palace in Paris."
    assert check("They met at the Elysee Palace.", [source], "Where did they meet?").supported
    assert check("Antoni Gaudi lo diseñó.", ["El arquitecto Antoni Gaudí lo diseñó."], "¿Quién?").supported
    assert not check("They met at the Matignon Palace.", [source], "Where did they meet?").supported


def test_a_cyrillic_name_is_a_fact_the_source_must_hold():
    source = "Самая известная башня Кремля — Спасская башня с курантами."
    question = "Как называется самая известная башня Кремля?"
    assert check("Спасская башня.", [source], question).supported
    wrong = check("Никольская башня.", [source], question)
    assert not wrong.supported and wrong.missing_facts == ("никольская",)


def test_each_chinese_or_japanese_character_is_a_word():
    assert WORD.findall("1707年の噴火 Windows版") == ["1707", "年", "の", "噴", "火", "Windows", "版"]
    source = "八达岭长城位于北京市延庆区，是最著名的一段长城。"
    question = "八达岭长城位于哪里？"
    assert check("北京市延庆区", [source], question).supported
    assert not check("上海市浦东新区", [source], question).supported
    assert not check("北京市延庆区，建于1990年", [source], question).supported  # an invented year


def test_full_width_digits_are_the_same_number():
    assert check("３７７６メートル", ["標高は3776メートルである。"], "標高は？").supported


def test_a_question_word_opening_a_question_is_not_a_fact_it_asks_about():
    assert question_facts("Кто был первым комендантом Кремля?").names == {"кремля"}
    assert question_facts("¿Cuántas torres tiene la Sagrada Família?").names == {"sagrada", "familia"}
    assert "polish" in question_facts("Who is the Polish prime minister?").names


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_the_ascii_shortcut_finds_the_same_words(text):
    assert word_tokens(text) == WORD.findall(text)
