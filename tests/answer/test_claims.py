from service.answer.claims import complete_prefix, parse_answer, parse_claim


def test_markers_are_read_in_every_common_form():
    assert parse_claim("A fact [1].").cited == [1]
    assert parse_claim("A fact [1, 3].").cited == [1, 3]
    assert parse_claim("A fact [2][4].").cited == [2, 4]
    assert parse_claim("A fact [1-3].").cited == [1, 2, 3]
    assert parse_claim("A fact [3] and more [3].").cited == [3]


def test_marker_text_is_removed_without_leaving_a_gap_before_punctuation():
    assert parse_claim("Macron spoke in Paris [2].").text == "Macron spoke in Paris."


def test_markers_after_the_full_stop_stay_with_their_sentence():
    claims = parse_answer("Macron spoke in Paris. [2] Zelensky agreed [4].")
    assert [(c.text, c.cited) for c in claims] == [("Macron spoke in Paris.", [2]), ("Zelensky agreed.", [4])]


def test_abbreviations_do_not_split_claims():
    claims = parse_answer("Mr. Macron met the U.S. envoy at 3 p.m. [1].")
    assert len(claims) == 1 and claims[0].cited == [1]


def test_refusals_are_recognised():
    assert parse_claim("NOT FOUND").refusal
    assert parse_claim("The documents do not mention the capital.").refusal
    assert parse_claim("This cannot be answered from the text.").refusal
    assert not parse_claim("26 countries pledged support [1].").refusal


def test_complete_prefix_holds_back_the_sentence_still_being_written():
    done, rest = complete_prefix("26 countries pledged [1]. Mr. Macron did")
    assert done == ["26 countries pledged [1]."]
    assert rest == "Mr. Macron did"
    assert complete_prefix("Only one sentence so far.") == ([], "Only one sentence so far.")
    assert complete_prefix("Macron spoke in Paris. [2]") == ([], "Macron spoke in Paris. [2]")


def test_a_sentence_closed_by_its_marker_and_full_stop_is_final_at_once():
    assert complete_prefix("26 countries pledged [1].") == (["26 countries pledged [1]."], "")
    assert complete_prefix("26 countries pledged [1]. Mr. Macron said so [2, 3].") == (
        ["26 countries pledged [1].", "Mr. Macron said so [2, 3]."], "")
    assert complete_prefix("He quoted it [citation needed].")[0] == []  # not one of our markers


def test_a_negative_answer_is_not_a_refusal():
    assert not parse_claim("No, Macron did not specify the number of soldiers [2].").refusal
    assert not parse_claim("Meloni said Italy would not send troops [3].").refusal
    assert parse_claim("The sentences do not specify the number of soldiers.").refusal
    assert parse_claim("The number of soldiers is not mentioned.").refusal
    assert parse_claim("Not specified in the text.").refusal


def test_a_chinese_answer_is_split_at_its_full_stops_and_final_at_its_marker():
    claims = parse_answer("长城大多修建于明朝[1]。八达岭长城位于北京市延庆区[2]。")
    assert [(c.text, c.cited) for c in claims] == [("长城大多修建于明朝。", [1]), ("八达岭长城位于北京市延庆区。", [2])]
    assert complete_prefix("长城大多修建于明朝[1]。") == (["长城大多修建于明朝[1]。"], "")
    assert parse_claim("长城在哪里？").text == ""  # a question is not a claim
