"""Open the live index as a ready-to-query retriever."""

from __future__ import annotations

from service.index import keyword, store
from service.index.embedding import get_encoder
from service.index.hybrid import HybridRetriever
from service.settings import Settings


def open_retriever(settings: Settings) -> HybridRetriever:
    """Load the live index. Raises store.IndexMissing / store.IndexCorrupt with a clear message."""
    data = store.load(settings.data_dir)
    try:
        bm25 = keyword.load(data.folder / "bm25")
    except Exception as exc:  # bm25s raises assorted errors on damaged files
        raise store.IndexCorrupt(f"keyword index in {data.folder} is unreadable: {exc}") from exc
    keys = [s.key for s in data.sentences]
    encoder = get_encoder(settings.embed_threads, for_queries=True)
    return HybridRetriever(data, encoder, keyword.KeywordSearch(bm25, keys))
