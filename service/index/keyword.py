"""The keyword side of the hybrid index: BM25 over sentences (llama-index-retrievers-bm25)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service.records import Sentence

# bm25s's default (words of two or more characters), except that Chinese and Japanese, written
# without spaces, give one term per character; the default made each clause a single term, so
# a question in those scripts matched nothing. Text in other scripts tokenizes as before.
# (support.UNSPACED as plain ranges: bm25s compiles the pattern with `re`, which has no \p{Han}.)
_UNSPACED = "\u3040-\u30fa\u30fc-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN_PATTERN = rf"(?u)[{_UNSPACED}]|\b(?:(?![{_UNSPACED}])\w){{2,}}"


def sentence_nodes(sentences: list[Sentence]) -> list:
    """One LlamaIndex node per sentence; its span travels in metadata."""
    from llama_index.core.schema import TextNode

    return [
        TextNode(
            id_=s.key,
            text=s.text,
            metadata={"document": s.document, "sentence": s.sentence, "start": s.start, "end": s.end},
            # Only the sentence text is indexed, never the metadata.
            excluded_embed_metadata_keys=["document", "sentence", "start", "end"],
            excluded_llm_metadata_keys=["document", "sentence", "start", "end"],
        )
        for s in sentences
    ]


def build(sentences: list[Sentence]):
    from llama_index.retrievers.bm25 import BM25Retriever

    return BM25Retriever.from_defaults(
        nodes=sentence_nodes(sentences), similarity_top_k=min(50, len(sentences)), language="en",
        token_pattern=TOKEN_PATTERN,
    )


def load(folder: Path):
    from llama_index.retrievers.bm25 import BM25Retriever

    retriever = BM25Retriever.from_persist_dir(str(folder))
    retriever.token_pattern = TOKEN_PATTERN  # not among what the retriever persists
    return retriever


class KeywordSearch:
    """BM25 scores over sentence rows, optionally restricted by a row mask."""

    def __init__(self, retriever, keys: list[str]) -> None:
        import bm25s

        self._bm25s = bm25s
        self._retriever = retriever
        row_of = {k: i for i, k in enumerate(keys)}
        corpus = retriever.corpus or []
        # bm25s returns corpus positions; map them to our sentence rows once.
        self._rows = np.array([row_of[c["node_id"]] for c in corpus], dtype=np.int64)
        self._n = len(corpus)

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """[(row, score)] best first; rows whose score is 0 are dropped."""
        r = self._retriever
        tokens = self._bm25s.tokenize(
            query,
            stemmer=r.stemmer if not r.skip_stemming else None,
            token_pattern=r.token_pattern,
            show_progress=False,
            return_ids=True,
        )
        if not tokens.ids or not tokens.ids[0]:
            return []
        weight_mask = None
        if mask is not None:
            weight_mask = mask[self._rows].astype(np.float32)
        docs, scores = r.bm25.retrieve(
            tokens, k=min(k, self._n), show_progress=False, weight_mask=weight_mask,
            corpus=np.arange(self._n), n_threads=1,
        )
        out = []
        for pos, score in zip(docs[0], scores[0]):
            if score > 0:
                out.append((int(self._rows[int(pos)]), float(score)))
        return out
