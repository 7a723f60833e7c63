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
