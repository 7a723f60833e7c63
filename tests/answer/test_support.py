import pytest

from service.answer.support import check, facts, restates_question

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
