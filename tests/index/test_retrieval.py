"""Hybrid retrieval on the seed corpus: exact facts, paraphrases, restriction, offsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.index.hybrid import UnknownDocuments

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
SEED_DOC_ID = "000_f586ed492cfdf968.txt"

PLEDGE = "French President Emmanuel Macron said the 26 countries had pledged"
OIL = "A White House official revealed that Mr. Trump has asked Europe to stop buying Russian oil."
TROOP_NUMBERS = "Mr. Macron did not specify the number of soldiers participating"

# Paraphrased questions sharing (almost) no content word with their answer sentence.
PARAPHRASES = [
    ("What did the American administration request from European nations regarding energy purchases?", OIL),
    ("Was the size of the troop contingent disclosed?", TROOP_NUMBERS),
    ("What did the Russian leader threaten?", "Russian President Vladimir Putin warned"),
    ("Which nations intend to station troops after the war?", "France and the UK have expressed their intention"),
]


def texts(hits) -> list[str]:
    return [h.sentence.text for h in hits]


def rank_of(fragment: str, sentences: list[str]) -> int | None:
    for i, text in enumerate(sentences):
        if fragment in text:
            return i
    return None


def bm25_only(retriever, question: str, k: int) -> list[str]:
    rows = retriever._keyword.search(question, k)
    return [retriever.index.sentences[row].text for row, _ in rows]


def test_number_question_ranks_the_pledge_sentence_first(seed_retriever):
    hits = seed_retriever.retrieve("How many countries pledged to guarantee Ukraine's security?", 5)
    assert PLEDGE in hits[0].sentence.text
    assert hits[0].score == pytest.approx(1.0)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize(("question", "answer"), PARAPHRASES)
def test_paraphrased_questions_find_the_answer_in_the_top_3(seed_retriever, question, answer):
    top = texts(seed_retriever.retrieve(question, 3))
    assert rank_of(answer, top) is not None, top


@pytest.mark.parametrize(("question", "answer"), PARAPHRASES[:2])
def test_bm25_alone_misses_what_hybrid_finds(seed_retriever, question, answer):
    # The keyword side alone does not have the answer in its top 3 (or at all) ...
    assert rank_of(answer, bm25_only(seed_retriever, question, 3)) is None
    # ... the dense side carries it into the fused top 3.
    hits = seed_retriever.retrieve(question, 3)
    found = [h for h in hits if answer in h.sentence.text]
    assert found and found[0].dense > 0.3


def test_hit_fields_are_consistent(seed_retriever):
    question = "Where was the joint press conference held?"
    hits = seed_retriever.retrieve(question, 4)
    query = seed_retriever.embed_query(question)
    for h in hits:
        assert 0.0 <= h.score <= 1.0
        assert seed_retriever.index.sentences[h.row] == h.sentence
        assert h.dense == pytest.approx(float(seed_retriever.index.embeddings[h.row] @ query), abs=1e-5)
    assert "joint press conference" in hits[0].sentence.text and hits[0].keyword > 0


def test_top_k_is_respected_and_rows_are_unique(seed_retriever):
    n = len(seed_retriever.index.sentences)
    assert len(seed_retriever.retrieve("Ukraine", 1)) == 1
    everything = seed_retriever.retrieve("Ukraine", 100)
    assert len(everything) == n == 18
    assert len({h.row for h in everything}) == n


def test_offsets_slice_back_into_the_document_on_disk(seed_retriever):
    raw = (SEEDS / SEED_DOC_ID).read_bytes().decode("utf-8-sig")
    hits = seed_retriever.retrieve("security guarantees", 18)
    assert hits
    for h in hits:
        s = h.sentence
        assert s.document == SEED_DOC_ID
        assert raw[s.start : s.end] == s.text
        assert seed_retriever.index.texts[s.document][s.start : s.end] == s.text


def test_restricting_to_a_document(seed_retriever, tmp_path):
    hits = seed_retriever.retrieve("oil", 3, documents=[SEED_DOC_ID])
    assert hits and all(h.sentence.document == SEED_DOC_ID for h in hits)
    assert OIL in hits[0].sentence.text
    with pytest.raises(UnknownDocuments, match="nope.txt"):
        seed_retriever.retrieve("oil", 3, documents=["nope.txt"])
    with pytest.raises(UnknownDocuments):
        seed_retriever.retrieve("oil", 3, documents=[SEED_DOC_ID, "missing.md"])
    assert seed_retriever.retrieve("oil", 3, documents=[]) == []


@pytest.fixture(scope="module")
def two_doc_retriever(tmp_path_factory):
    from service.index.loader import open_retriever
    from service.ingest.pipeline import ingest
    from service.settings import Settings

    base = tmp_path_factory.mktemp("two-docs")
    docs = base / "docs"
    (docs / "notes").mkdir(parents=True)
    (docs / "seed.txt").write_text((SEEDS / SEED_DOC_ID).read_text(encoding="utf-8"), encoding="utf-8")
    (docs / "notes" / "oil.md").write_text(
        "# Oil\n\nRussian oil exports fell sharply in March.\nEurope buys less Russian oil now.\n",
        encoding="utf-8",
    )
    settings = Settings(docs_dir=docs, data_dir=base / "data")
    ingest(docs, settings.data_dir)
    return open_retriever(settings)


def test_restriction_keeps_results_inside_the_chosen_documents(two_doc_retriever):
    question = "Who stopped buying Russian oil?"
    both = {h.sentence.document for h in two_doc_retriever.retrieve(question, 6)}
    assert both == {"seed.txt", "notes/oil.md"}
    for doc in ("seed.txt", "notes/oil.md"):
        hits = two_doc_retriever.retrieve(question, 6, documents=[doc])
        assert hits and {h.sentence.document for h in hits} == {doc}
    only_md = two_doc_retriever.retrieve(question, 50, documents=["notes/oil.md"])
    assert len(only_md) == 3  # the heading and two sentences, nothing else
    for h in only_md:
        text = two_doc_retriever.index.texts[h.sentence.document]
        assert text[h.sentence.start : h.sentence.end] == h.sentence.text
    assert np.all(np.isfinite([h.score for h in only_md]))


@pytest.fixture(scope="module")
def chinese_retriever(tmp_path_factory):
    from service.index.loader import open_retriever
    from service.ingest.pipeline import ingest
    from service.settings import Settings

    base = tmp_path_factory.mktemp("zh-docs")
    docs = base / "docs"
    docs.mkdir()
    (docs / "changcheng.txt").write_text(
        "长城是中国古代的军事防御工程。现存的长城大多修建于明朝。八达岭长城位于北京市延庆区，是最著名的一段长城。\n",
        encoding="utf-8")
    (docs / "seed.txt").write_text((SEEDS / SEED_DOC_ID).read_text(encoding="utf-8"), encoding="utf-8")
    settings = Settings(docs_dir=docs, data_dir=base / "data")
    ingest(docs, settings.data_dir)
    return open_retriever(settings)  # read back from disk, as the service does


def test_a_chinese_question_finds_its_sentence_by_keyword(chinese_retriever):
    # Each character is a term; before, a whole clause was one term and matched nothing.
    found = bm25_only(chinese_retriever, "八达岭长城位于哪里？", 3)
    assert found and found[0] == "八达岭长城位于北京市延庆区，是最著名的一段长城。"
    assert bm25_only(chinese_retriever, "How many countries pledged?", 3)[0].startswith("French President")
