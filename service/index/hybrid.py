"""Hybrid retrieval: dense (MiniLM cosine) and BM25 scores fused by relative score.

Dense retrieval finds paraphrases that share few words with the answer sentence; BM25
finds exact names and numbers the small embedding model blurs. Each side's scores are
min-max normalised over its candidates and mixed with a weight: LlamaIndex's
QueryFusionRetriever "relative_score" mode. We measured it against reciprocal rank fusion on
paraphrased seed questions: RRF let any BM25 hit outrank the dense top hit (8/11 answers in
the top 3 vs 9/11). We fuse here rather than through QueryFusionRetriever because every query
may restrict the documents searched, and the search must stay within a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from service.errors import FootnoteError
from service.index.embedding import MiniLMEncoder
from service.index.keyword import KeywordSearch
from service.index.store import IndexData
from service.records import Sentence

DENSE_WEIGHT = 0.7  # share of the dense side in the fused score (measured, see module doc)


@dataclass(frozen=True)
class Hit:
    sentence: Sentence
    score: float  # fused score in [0, 1]: relative within one query
    dense: float  # cosine similarity of question and sentence, in [-1, 1]
    keyword: float  # BM25 score, 0 when the sentence shares no term with the question
    row: int


class UnknownDocuments(FootnoteError, ValueError):
    """A search was restricted to documents the index does not have."""


class HybridRetriever:
    def __init__(self, index: IndexData, encoder: MiniLMEncoder, keyword: KeywordSearch) -> None:
        self.index = index
        self._encoder = encoder
        self._keyword = keyword
        self._doc_rows = {d: (e.first, e.first + e.count) for d, e in index.manifest.items()}

    def _mask(self, documents: Iterable[str] | None) -> np.ndarray | None:
        if documents is None:
            return None
        docs = list(documents)
        unknown = [d for d in docs if d not in self._doc_rows]
        if unknown:
            raise UnknownDocuments(f"unknown document id(s): {', '.join(unknown)}")
        mask = np.zeros(len(self.index.sentences), dtype=bool)
        for d in docs:
            a, b = self._doc_rows[d]
            mask[a:b] = True
        return mask

    def embed_query(self, question: str) -> np.ndarray:
        return self._encoder.encode([question])[0]

    def similarity(self, text: str, other: str) -> float:
        """Cosine similarity of two texts in the retrieval embedding space."""
        vectors = self._encoder.encode([text, other])
        return float(np.dot(vectors[0], vectors[1]))

    def retrieve(
        self, question: str, top_k: int = 8, documents: Iterable[str] | None = None
    ) -> list[Hit]:
        n = len(self.index.sentences)
        if n == 0:
            return []
        mask = self._mask(documents)
        depth = min(n, max(50, 4 * top_k))  # each ranking contributes this many candidates
        query = self.embed_query(question)
        cosine = self.index.embeddings @ query
        ranked_cos = cosine if mask is None else np.where(mask, cosine, -np.inf)
        dense_rows = np.argpartition(-ranked_cos, depth - 1)[:depth]
        dense_rows = dense_rows[np.isfinite(ranked_cos[dense_rows])]
        keyword = dict(self._keyword.search(question, depth, mask))

        candidates = np.union1d(dense_rows, np.fromiter(keyword, dtype=np.int64, count=len(keyword)))
        if candidates.size == 0:
            return []
        lo = float(ranked_cos[dense_rows].min()) if dense_rows.size else 0.0
        hi = float(ranked_cos[dense_rows].max()) if dense_rows.size else 1.0
        ranked = relative_score_fusion(candidates, cosine[candidates], (lo, hi), keyword, top_k)
        return [
            Hit(
                self.index.sentences[int(candidates[i])], score,
                float(cosine[candidates[i]]), keyword.get(int(candidates[i]), 0.0), int(candidates[i]),
            )
            for i, score in ranked
        ]


def relative_score_fusion(rows: np.ndarray, cosine: np.ndarray, dense_range: tuple[float, float],
                          keyword: dict[int, float], top_k: int) -> list[tuple[int, float]]:
    """[(position in `rows`, fused score)] best first, ties by row: each side min-max
    normalised (dense over its own top candidates, `dense_range`; keyword by its best score)
    and mixed by DENSE_WEIGHT. Shared by every index store so they rank alike."""
    lo, hi = dense_range
    dense_norm = np.clip((cosine - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    top_kw = max(keyword.values(), default=0.0)
    kw_norm = np.array([keyword.get(int(r), 0.0) / top_kw if top_kw else 0.0 for r in rows])
    fused = DENSE_WEIGHT * dense_norm + (1 - DENSE_WEIGHT) * kw_norm
    order = np.lexsort((rows, -fused))[:top_k]
    return [(int(i), float(fused[i])) for i in order]
