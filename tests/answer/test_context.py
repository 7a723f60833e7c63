"""Packing evidence: whole documents when they fit (a stable, reusable prompt prefix), else sentences."""

from __future__ import annotations

from service.answer.context import pack, pack_documents

Q = "How many countries pledged to guarantee Ukraine's security?"


def test_a_document_that_fits_is_given_whole_and_in_order(seed_retriever):
    hits = seed_retriever.retrieve(Q, 8)
    context = pack_documents(hits, seed_retriever.index.sentences_of, 5000)
    doc = hits[0].sentence.document
    assert [s.key for s in context.sentences] == [s.key for s in seed_retriever.index.sentences_of(doc)]
    best = context.sentences.index(hits[0].sentence)
    assert context.ranks[best] == 0 and context.relevance[best] == max(context.relevance)


def test_the_same_documents_give_the_same_prompt_whatever_the_question(seed_retriever):
    render = [pack_documents(seed_retriever.retrieve(q, 8), seed_retriever.index.sentences_of, 5000).render()
              for q in (Q, "Which country will not send troops?")]
    assert render[0] == render[1]


def test_a_document_over_the_budget_falls_back_to_sentences(seed_retriever):
    hits = seed_retriever.retrieve(Q, 8)
    assert pack_documents(hits, seed_retriever.index.sentences_of, 100) is None
    assert pack_documents(hits, seed_retriever.index.sentences_of, 0) is None
    assert len(pack(hits, 1200).sentences) <= 8


def test_a_sentence_that_points_back_brings_the_one_before(seed_retriever):
    question = "Who said that the level of participation of each country still needs to be clarified?"
    hits = seed_retriever.retrieve(question, 3)
    sentences_of = seed_retriever.index.sentences_of
    plain = pack(hits, 1200)
    context = pack(hits, 1200, sentences_of)
    he = next(s for s in plain.sentences if s.text.startswith("He said that 26 countries"))
    before = sentences_of(he.document)[he.sentence - 2]
    assert before not in plain.sentences and before in context.sentences
    assert context.sentences.index(before) + 1 == context.sentences.index(he)  # read in order
    assert context.relevance[context.sentences.index(before)] == 0.0  # not retrieved
    keys = [(s.document, s.sentence) for s in context.sentences]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_antecedents_stay_within_the_budget(seed_retriever):
    hits = seed_retriever.retrieve("What did he say about the level of participation?", 8)
    tight = pack(hits, 1200).tokens
    assert pack(hits, tight, seed_retriever.index.sentences_of).tokens <= tight


def test_a_cited_sentence_is_read_with_the_shown_sentence_that_points_back_at_it(seed_retriever):
    sentences_of = seed_retriever.index.sentences_of
    question = "Who said that the level of participation of each country still needs to be clarified?"
    context = pack(seed_retriever.retrieve(question, 3), 1200, sentences_of)
    he = next(s for s in context.sentences if s.text.startswith("He said that 26 countries"))
    named = sentences_of(he.document)[he.sentence - 2]
    assert context.read_with_neighbours([named]) == [named, he]  # the name, then what he said
    assert context.read_with_neighbours([he]) == [named, he]  # and the other way round
    unrelated = next(s for s in context.sentences if s not in (named, he) and not s.text.startswith(("He ", "It ")))
    assert context.read_with_neighbours([unrelated])[0] == unrelated
