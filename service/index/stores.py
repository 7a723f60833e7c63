"""Where the index lives, chosen in one place from settings (`index_store`, which the
container calls once and keeps).

Two stores implement `IndexStore`: the file index in the data folder (the default; no server)
and the PostgreSQL + pgvector store (`FOOTNOTE_STORE=postgresql://…`) that several
`footnote serve` replicas share. Both hand out a retriever whose `.index` carries the
manifest, texts and sentences of one version and whose `.retrieve()` returns `Hit`s, so the
answer path (retrieve → pack → answer) never knows which store it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from service.errors import FootnoteError
from service.settings import Settings

if TYPE_CHECKING:
    from service.index.embedding import MiniLMEncoder
    from service.index.hybrid import Hit
    from service.index.store import DocEntry
    from service.ingest.pipeline import IngestReport
    from service.records import Sentence

Progress = Callable[[str], None]
EncoderFactory = Callable[[bool], "MiniLMEncoder"]  # for_queries -> the container's encoder


class StoreUnavailable(FootnoteError):
    """The index store (the database) cannot be reached right now; retrying later may work."""


class IndexView(Protocol):
    """One published index version, as the routes and the answer path read it."""

    manifest: Mapping[str, DocEntry]
    texts: Mapping[str, str]
    sentences: list[Sentence]

    @property
    def version(self) -> str: ...

    def sentences_of(self, doc_id: str) -> list[Sentence]: ...


class Retriever(Protocol):
    index: IndexView

    def retrieve(self, question: str, top_k: int = 8,
                 documents: Iterable[str] | None = None) -> list[Hit]: ...

    def similarity(self, text: str, other: str) -> float: ...


class IndexStore(Protocol):
    shared: bool  # True: replicas only read it; a separate `footnote ingest` writes it

    def ingest(self, docs_dir: Path, progress: Progress | None = None,
               rebuild: bool = False) -> IngestReport: ...

    def live_version(self) -> str:
        """The published version's name (cheap). Raises IndexMissing, IndexCorrupt, StoreUnavailable."""
        ...

    def open_retriever(self) -> Retriever: ...

    def close(self) -> None: ...


class FileIndexStore:
    """Today's index: immutable folders under the data folder, switched by CURRENT."""

    shared = False

    def __init__(self, settings: Settings, encoder: EncoderFactory) -> None:
        self.settings = settings
        self._encoder = encoder

    def ingest(self, docs_dir: Path, progress: Progress | None = None, rebuild: bool = False) -> IngestReport:
        from service.ingest.pipeline import ingest

        s = self.settings
        return ingest(docs_dir, s.data_dir, progress, s.embed_batch_size, encoder=lambda: self._encoder(False),
                      rebuild=rebuild, max_document_bytes=s.max_document_bytes)

    def live_version(self) -> str:
        from service.index.store import current_folder

        return current_folder(self.settings.data_dir).name

    def open_retriever(self) -> Retriever:
        from service.index.loader import open_retriever

        return open_retriever(self.settings, self._encoder(True))

    def close(self) -> None:
        pass


def index_store(settings: Settings, encoder: EncoderFactory) -> IndexStore:
    """The store `settings` name: the file index unless FOOTNOTE_STORE is set."""
    if not settings.store:
        return FileIndexStore(settings, encoder)
    from service.index.pg_store import PgIndexStore

    return PgIndexStore(settings, encoder)
