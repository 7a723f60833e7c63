"""Wire the services together from settings: the one place that builds the object graph."""

from __future__ import annotations

import sys

from service.answer.service import AnswerService
from service.index.hybrid import HybridRetriever
from service.index.loader import open_retriever
from service.ingest.pipeline import ingest
from service.llm.registry import get_backend
from service.settings import Settings


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ready_retriever(settings: Settings, quiet: bool = False) -> HybridRetriever:
    """Bring the index up to date with the corpus (fast when nothing changed), then open it."""
    ingest(settings.docs_dir, settings.data_dir, None if quiet else _stderr,
           settings.embed_batch_size, settings.embed_threads)
    return open_retriever(settings)


def answer_service(settings: Settings, retriever: HybridRetriever | None = None,
                   quiet: bool = False) -> AnswerService:
    return AnswerService(
        retriever or ready_retriever(settings, quiet),
        settings,
        lambda name: get_backend(name, settings),
    )
