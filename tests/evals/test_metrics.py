"""Behaviour of the evaluation metrics on small hand-made cases."""

from __future__ import annotations

import math

import pytest

from service.evals.metrics import (
    ANSWERED_UNANSWERABLE,
    FALSE_REFUSAL,
    MISSING_CITATION,
    WRONG_ANSWER,
    ItemResult,
    citation_precision,
    citation_recall_any,
    contains,
    contains_any,
    default_supports,
    evidence_recall,
    exact_match,
    exact_match_strict,
    false_refusal_rate,
    mean_recall_at_k,
    mean_reciprocal_rank,
    mrr,
    normalize_answer,
    percentile,
    recall_at_k,
    refusal_accuracy,
    summarize,
    token_f1,
    token_f1_strict,
)

S1 = "Macron said the 26 countries had pledged to ensure Ukraine's security."
S2 = 'He spoke at the Elysee Palace in Paris on September 4.'
S3 = "Germany said it would only decide later."
S4 = "A White House official revealed that Mr. Trump has asked Europe to stop buying Russian oil."


def item(**kw) -> ItemResult:
    base = dict(id="q", category="single-fact", answerable=True, refused=False)
    base.update(kw)
    return ItemResult(**base)


# ------------------------------------------------------------------ answers


def test_normalize_answer_squad_rules() -> None:
    assert normalize_answer("The  Elysee Palace!") == "elysee palace"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("Theory") == "theory"  # articles only as whole words
    assert normalize_answer("  ") == ""


def test_exact_match() -> None:
    assert exact_match("the Elysee Palace.", ["Elysee Palace"]) == 1.0
    assert exact_match("Elysee", ["Elysee Palace"]) == 0.0
    assert exact_match("Paris", ["Elysee Palace", "Paris"]) == 1.0
    assert exact_match_strict("Paris", ["Elysee Palace", "Paris"]) == 0.0


def test_token_f1_known_values() -> None:
    # SQuAD example: pred "Denver Broncos" vs gold "Denver Broncos season" -> P=1, R=2/3 -> 0.8
    assert token_f1("Denver Broncos", ["Denver Broncos season"]) == pytest.approx(0.8)
    # pred 3 tokens, gold 2, 1 common: P=1/3, R=1/2 -> F1=0.4
    assert token_f1("red blue green", ["blue yellow"]) == pytest.approx(0.4)
    assert token_f1("nothing here", ["Paris"]) == 0.0
    # best over golds, strict only on the canonical
    assert token_f1("Paris", ["Elysee Palace", "Paris"]) == 1.0
    assert token_f1_strict("Paris", ["Elysee Palace", "Paris"]) == 0.0
    # repeated tokens are counted with multiplicity
    assert token_f1("the the cat cat", ["cat"]) == pytest.approx(2 * (1 / 2) * 1 / (1 / 2 + 1))


def test_empty_golds_follow_squad2() -> None:
    assert exact_match("", []) == 1.0
    assert token_f1("", []) == 1.0
    assert exact_match("Sofia", []) == 0.0
    assert token_f1("Sofia", []) == 0.0
    # a prediction that normalises to nothing vs a real gold
    assert token_f1("the", ["Paris"]) == 0.0


def test_contains_is_token_aligned() -> None:
    assert contains("It was 26 countries.", "26")
    assert not contains("It was 260 countries.", "26")
    assert contains("They met at the Elysee Palace, in Paris.", "the Elysee Palace")
    assert not contains("anything", "")
    assert not contains("anything", "the")  # normalises to empty
    assert contains_any("France and the UK", ["Britain and France", "France and UK"])
    assert not contains_any("France", ["France and the UK"])


def test_chinese_and_japanese_characters_are_tokens_each() -> None:
    assert normalize_answer("1707年の宝永大噴火。") == "1707 年 の 宝 永 大 噴 火"
    assert contains("最後の噴火は1707年の宝永大噴火である。", "1707年")
    assert not contains("最後の噴火は1708年である。", "1707年")
    assert contains_any("现存的长城大多修建于明朝 [1]。", ["明朝"])


# ------------------------------------------------------------------ citations


def test_citation_metrics_exclude_refused_items() -> None:
    items = [
        item(id="a", answer="26", gold_answers=["26"], gold_evidence=[S1], citation_texts=[S1]),
        item(id="b", answer="x", gold_answers=["Paris"], gold_evidence=[S1, S2], citation_texts=[S3]),
        # refused: would be all zeros if it were counted
        item(id="c", refused=True, gold_answers=["Paris"], gold_evidence=[S2], citation_texts=[]),
    ]
    assert citation_recall_any(items) == pytest.approx(1 / 2)
    assert evidence_recall(items) == pytest.approx(1 / 3)
    assert citation_precision(items) == pytest.approx(1 / 2)
    # all refused -> undefined, not 0
    only_refused = [items[2]]
    assert citation_recall_any(only_refused) is None
    assert evidence_recall(only_refused) is None
    assert citation_precision(only_refused) is None


def test_citation_matching_normalises_whitespace_only() -> None:
    spaced = "Macron  said the 26 countries\nhad pledged to ensure Ukraine's security. "
    it = item(gold_answers=["Paris"], gold_evidence=[S1], citation_texts=[spaced])
    assert citation_recall_any([it]) == 1.0
    lower = item(gold_answers=["Paris"], gold_evidence=[S1], citation_texts=[S1.lower()])
    assert citation_recall_any([lower]) == 0.0


def test_citation_precision_counts_supporting_non_gold_sentences() -> None:
    # S2 is not gold evidence but contains the canonical answer "Paris": it supports it.
    it = item(answer="Paris", gold_answers=["Paris"], gold_evidence=[S1], citation_texts=[S1, S2, S3])
    assert citation_precision([it]) == pytest.approx(2 / 3)
    assert citation_precision([it], supports=lambda c, a: False) == pytest.approx(1 / 3)
    assert citation_precision([it], supports=lambda c, a: True) == 1.0
    # duplicates count once
    dup = item(gold_answers=["Paris"], gold_evidence=[S1], citation_texts=[S3, S3, S3, S1])
    assert citation_precision([dup]) == pytest.approx(1 / 2)


def test_citation_recall_excludes_items_without_gold_evidence() -> None:
    no_gold = item(id="n", answer="26", gold_answers=["26"], gold_evidence=[], citation_texts=[S3])
    with_gold = item(id="g", answer="26", gold_answers=["26"], gold_evidence=[S1], citation_texts=[S1])
    assert citation_recall_any([no_gold, with_gold]) == 1.0
    assert evidence_recall([no_gold, with_gold]) == 1.0
    assert citation_recall_any([no_gold]) is None


def test_default_supports() -> None:
    assert default_supports(S4, "Russian oil")
    assert default_supports(S1, "26")
    assert not default_supports(S1, "35")
    assert not default_supports(S1, "")


# ------------------------------------------------------------------ refusals


def test_refusal_metrics() -> None:
    items = [
        item(id="u1", answerable=False, refused=True),
        item(id="u2", answerable=False, refused=False, answer="Sofia"),
        item(id="u3", answerable=False, refused=True),
        item(id="a1", answerable=True, refused=True),
        item(id="a2", answerable=True, refused=False),
        item(id="a3", answerable=True, refused=False),
        item(id="a4", answerable=True, refused=False),
    ]
    assert refusal_accuracy(items) == pytest.approx(2 / 3)
    assert false_refusal_rate(items) == pytest.approx(1 / 4)
    assert refusal_accuracy(items[3:]) is None


# ------------------------------------------------------------------ retrieval


def test_recall_at_k_and_mrr() -> None:
    ranked = [S3, S1, S4, S2]
    assert recall_at_k(ranked, [S1], 1) == 0.0
    assert recall_at_k(ranked, [S1], 2) == 1.0
    assert recall_at_k(ranked, [S1, S2], 3) == 0.5
    assert recall_at_k(ranked, [S1, S2], 10) == 1.0
    assert mrr(ranked, [S1, S2]) == 0.5
    assert mrr(ranked, [S2]) == 0.25
    assert mrr([S3], [S1]) == 0.0
    with pytest.raises(ValueError):
        recall_at_k(ranked, [], 1)
    with pytest.raises(ValueError):
        recall_at_k(ranked, [S1], 0)


def test_aggregated_retrieval_skips_items_without_gold_or_ranking() -> None:
    items = [
        item(id="a", gold_evidence=[S1], retrieved_texts=[S1, S3]),
        item(id="b", gold_evidence=[S2], retrieved_texts=[S3, S4, S2]),
        item(id="c", gold_evidence=[], retrieved_texts=[S3]),  # no gold: skipped
        item(id="d", gold_evidence=[S1], retrieved_texts=None),  # not recorded: skipped
        # refused, but retrieval is still judged
        item(id="e", refused=True, gold_evidence=[S4], retrieved_texts=[S3]),
    ]
    assert mean_recall_at_k(items, 1) == pytest.approx(1 / 3)
    assert mean_recall_at_k(items, 3) == pytest.approx(2 / 3)
    assert mean_reciprocal_rank(items) == pytest.approx((1 + 1 / 3 + 0) / 3)


# ------------------------------------------------------------------ latency


def test_percentile_matches_numpy_linear() -> None:
    xs = [15, 20, 35, 40, 50]
    assert percentile(xs, 50) == 35
    assert percentile(xs, 40) == pytest.approx(29.0)  # pos 1.6 -> 20 + 0.6*15
    assert percentile(xs, 95) == pytest.approx(48.0)  # pos 3.8 -> 40 + 0.8*10
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([7], 95) == 7
    assert percentile([3, 1, 2], 0) == 1 and percentile([3, 1, 2], 100) == 3
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_percentile_agrees_with_numpy() -> None:
    np = pytest.importorskip("numpy")
    xs = [3.0, 812.5, 14.2, 99.0, 250.0, 1.5, 77.7]
    for p in (0, 5, 37.5, 50, 90, 95, 99, 100):
        assert math.isclose(percentile(xs, p), float(np.percentile(xs, p)))


# ------------------------------------------------------------------ summarize


def _run() -> list[ItemResult]:
    return [
        # correct and cited
        item(id="ok", answer="26 countries pledged.", gold_answers=["26", "twenty-six"],
             gold_evidence=[S1], citation_texts=[S1], retrieved_texts=[S1, S2],
             latency_ms={"total": 100.0}, prompt_tokens=100, completion_tokens=10),
        # wrong answer, correct citation
        item(id="wrong", answer="35 countries.", gold_answers=["26"], gold_evidence=[S1],
             citation_texts=[S1], retrieved_texts=[S2, S1],
             latency_ms={"total": 300.0}, prompt_tokens=200, completion_tokens=30),
        # right answer, no citations at all
        item(id="nocite", category="paraphrase", answer="Russian oil", gold_answers=["Russian oil"],
             gold_evidence=[S4], citation_texts=[], retrieved_texts=[S3],
             latency_ms={"total": 200.0}),
        # refused an answerable question
        item(id="falseref", category="multi-sentence", refused=True, gold_answers=["Paris"],
             gold_evidence=[S1, S2], retrieved_texts=[S1, S2], latency_ms={"total": 50.0}),
        # answered an unanswerable question
        item(id="memory", category="unanswerable", answerable=False, answer="Sofia",
             citation_texts=[S3], latency_ms={"total": 400.0}),
        # correctly refused
        item(id="refused", category="unanswerable", answerable=False, refused=True,
             latency_ms={"total": 20.0}),
    ]


def test_summarize_failures_have_reasons() -> None:
    out = summarize(_run())
    reasons = {f["id"]: f["reasons"] for f in out["failures"]}
    assert reasons == {
        "wrong": [WRONG_ANSWER],
        "nocite": [MISSING_CITATION],
        "falseref": [FALSE_REFUSAL],
        "memory": [ANSWERED_UNANSWERABLE],
    }
    assert {f["category"] for f in out["failures"]} == {"single-fact", "paraphrase", "multi-sentence", "unanswerable"}


def test_summarize_metrics() -> None:
    out = summarize(_run())
    assert out["n_items"] == 6 and out["n_answerable"] == 4 and out["n_answered_answerable"] == 3
    # answer quality over the 4 answerable items (the false refusal scores 0)
    assert out["contains"] == pytest.approx(2 / 4)
    assert out["exact_match"] == pytest.approx(1 / 4)  # only "Russian oil"
    assert out["accuracy"] == pytest.approx(3 / 6)  # ok, nocite, refused
    assert out["pass_rate"] == pytest.approx(2 / 6)
    # citations: refused item excluded; ok + wrong hit, nocite misses
    assert out["citation_recall_any"] == pytest.approx(2 / 3)
    assert out["evidence_recall"] == pytest.approx(2 / 3)
    assert out["citation_precision"] == 1.0
    assert out["refusal_accuracy"] == 0.5
    assert out["false_refusal_rate"] == 0.25
    # retrieval over the 4 items with gold evidence and a ranking
    assert out["recall_at_1"] == pytest.approx((1 + 0 + 0 + 0.5) / 4)
    assert out["recall_at_3"] == pytest.approx((1 + 1 + 0 + 1) / 4)
    assert out["mrr"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert out["latency_total_ms_p50"] == pytest.approx(150.0)
    assert out["latency_total_ms_p95"] == pytest.approx(375.0)
    assert out["prompt_tokens_mean"] == 150 and out["completion_tokens_total"] == 40


def test_summarize_by_category() -> None:
    out = summarize(_run())
    cats = out["by_category"]
    assert set(cats) == {"single-fact", "paraphrase", "multi-sentence", "unanswerable"}
    assert cats["single-fact"]["contains"] == 0.5
    assert cats["unanswerable"]["refusal_accuracy"] == 0.5
    assert cats["unanswerable"]["contains"] is None  # no answerable items there
    assert cats["multi-sentence"]["citation_recall_any"] is None  # its only item was refused
    assert "by_category" not in cats["single-fact"] and "failures" not in cats["single-fact"]


def test_summarize_custom_supports_and_from_dict() -> None:
    rec = {"id": "x", "category": "single-fact", "answerable": True, "refused": False,
           "answer": "Paris", "citation_texts": [S2, S3], "gold_answers": ["Paris"],
           "gold_evidence": [S2], "question": "ignored extra key"}
    it = ItemResult.from_dict(rec)
    assert it.answer == "Paris" and it.retrieved_texts is None
    assert summarize([it])["citation_precision"] == 0.5
    assert summarize([it], supports=lambda c, a: True)["citation_precision"] == 1.0
