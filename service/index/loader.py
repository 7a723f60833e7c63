"""Open the live index as a ready-to-query retriever."""

from __future__ import annotations

from service.index import keyword, store
from service.index.embedding import MiniLMEncoder
from service.index.hybrid import HybridRetriever
from service.settings import Settings


def open_retriever(settings: Settings, encoder: MiniLMEncoder | None = None) -> HybridRetriever:
    """Load the live index. Raises store.IndexMissing / store.IndexCorrupt with a clear message.

    `encoder` embeds the questions (the container passes its own; by default a new one)."""
    data = store.load(settings.data_dir, servable=True)  # an older format answers until rebuilt
    try:
        bm25 = keyword.load(data.folder / "bm25")
    except Exception as exc:  # bm25s raises assorted errors on damaged files
        raise store.IndexCorrupt(f"keyword index in {data.folder} is unreadable: {exc}") from exc
    keys = [s.key for s in data.sentences]
    encoder = encoder or MiniLMEncoder(settings.embed_threads, spinning=False)
    return HybridRetriever(data, encoder, keyword.KeywordSearch(bm25, keys))
