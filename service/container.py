"""Wire the services together from one `Settings`: the one place that builds the object graph
and owns the long-lived objects (backends, embedding encoders), so a second `Settings` gets its
own and nothing below the entry points reads the environment."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from service.answer.service import AnswerService
from service.index.embedding import MiniLMEncoder
from service.index.store import IndexCorrupt, IndexMissing, IndexWriteError, IngestBusy, has_index
from service.index.stores import IndexStore, Retriever, StoreUnavailable, index_store
from service.ingest.corpus import CorpusError
from service.ingest.pipeline import IngestReport, Progress
from service.llm import registry
from service.llm.base import LLMBackend
from service.settings import Settings


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Container:
    """The long-lived objects for one `Settings`, each created on first use and then reused."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._backends: dict[str, LLMBackend] = {}
        self._encoders: dict[bool, MiniLMEncoder] = {}
        self._store: IndexStore | None = None

    def backend(self, name: str) -> LLMBackend:
        """The generative backend `name`, created once per container (loading a model: once)."""
        with self._lock:
            if name not in self._backends:
                self._backends[name] = registry.create(name, self.settings)
            return self._backends[name]

    def encoder(self, for_queries: bool = False) -> MiniLMEncoder:
        """The embedding encoder (~0.3 s and ~30 MB to load); queries get one tuned for latency."""
        with self._lock:
            if for_queries not in self._encoders:
                self._encoders[for_queries] = MiniLMEncoder(self.settings.embed_threads, spinning=not for_queries)
            return self._encoders[for_queries]

    @property
    def store(self) -> IndexStore:
        """Where the index lives (files, or a database shared by replicas), chosen from settings."""
        with self._lock:
            if self._store is None:
                self._store = index_store(self.settings, lambda for_queries: self.encoder(for_queries))
            return self._store

    def close(self) -> None:
        """Release what the store holds (a database store's connections)."""
        if self._store is not None:
            self._store.close()

    def ingest(self, progress: Progress | None = None, rebuild: bool = False) -> IngestReport:
        return self.store.ingest(self.settings.docs_dir, progress, rebuild)

    def open_retriever(self) -> Retriever:
        return self.store.open_retriever()

    def _has_index(self) -> bool:
        if not self.store.shared:
            return has_index(self.settings.data_dir)
        try:
            self.store.live_version()
            return True
        except IndexMissing:
            return False

    def ready_retriever(self, quiet: bool = False) -> Retriever:
        """Bring the index up to date with the corpus (fast when nothing changed), then open it.

        When the index cannot be updated (another ingest runs, the disk is full, the data folder
        is read-only) the one already built is opened instead, with a warning saying why. An
        index that fails its checksums when opened is rebuilt once."""
        say = None if quiet else _stderr
        try:
            self.ingest(say)
        except (IngestBusy, IndexWriteError) as exc:
            if not self._has_index():
                raise
            _stderr(f"warning: {exc}; answering from the index built before")
        try:
            return self.open_retriever()
        except IndexCorrupt as exc:  # damage the fast path cannot see (it hashes only files whose mtime moved)
            _stderr(f"warning: {exc}")
            self.ingest(say, rebuild=True)
            return self.open_retriever()

    def serving_service(self) -> tuple[AnswerService | None, Callable[[], None] | None]:
        """For `footnote serve`: the service, answering at once from the index already built,
        and `refresh` to run in the background, which brings the index up to date with the
        corpus (the running service swaps a published version in). Without a usable index there
        is nothing to answer from yet: it ingests first and `refresh` is None.

        A replica of a shared store only reads it (`footnote ingest` writes): it never ingests,
        and while the database is down or empty there is no service yet (None); the runtime
        says why it is not ready and loads the index when it can."""
        if self.store.shared:
            try:
                return self.answer_service(self.open_retriever()), None
            except (StoreUnavailable, IndexMissing, IndexCorrupt) as exc:
                _stderr(f"warning: {exc}; not ready until it is available")
                return None, None
        try:
            retriever = self.open_retriever()
        except (IndexMissing, IndexCorrupt):
            return self.answer_service(), None

        def refresh() -> None:
            try:
                report = self.ingest(_stderr)
            except (CorpusError, IngestBusy, IndexWriteError) as exc:
                _stderr(f"warning: {exc}; answering from the index built before")
                return
            if not report.up_to_date:
                _stderr(f"indexed {report.documents} documents, {report.sentences} sentences; "
                        "answering from them within seconds")

        return self.answer_service(retriever), refresh

    def answer_service(self, retriever: Retriever | None = None, quiet: bool = False) -> AnswerService:
        return AnswerService(retriever or self.ready_retriever(quiet), self.settings, self.backend)
