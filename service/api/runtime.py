"""What the routes share: the answer service (loaded once), readiness, and answer runs.

`AnswerService.ask_stream` is a synchronous generator that retrieves, generates and verifies.
An `AnswerRun` advances it one event at a time in a worker thread, so the event loop stays free
(`/healthz` answers in milliseconds while a model generates). Closing a run closes the
generator, which closes the model's stream: a client that goes away stops the generation, at
the latest when the sentence being generated is finished.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from fastapi import FastAPI, Request

from service.answer.events import AnswerEvent, Done
from service.answer.models import Answer
from service.answer.service import AnswerService, InvalidQuestion, choose_backend, clean_question
from service.api.errors import ApiError, RequestTimeout, ServerStopping, from_answer_error
from service.api.limits import NO_SLOT, GenerationQueue, Slot
from service.container import Container
from service.llm import registry
from service.llm.base import ChatMessage, LLMBackend
from service.llm.registry import UnknownBackend
from service.settings import Settings

log = logging.getLogger("footnote.api")


def _next(events: Iterator[AnswerEvent]) -> AnswerEvent | None:
    return next(events, None)


class AnswerRun:
    """One answer in progress: the event generator, its generation slot and its deadline, and
    the question it answers (a chat follow-up rewritten) with any warnings about that."""

    def __init__(self, events: Iterator[AnswerEvent], slot: Slot, deadline: float, timeout_s: float,
                 question: str, warnings: list[str] | None = None) -> None:
        self._events = events
        self._slot = slot
        self._deadline = deadline
        self._timeout_s = timeout_s
        self.question = question
        self.warnings = warnings or []
        self.closed = False
        self.stopping: anyio.Event | None = None  # set when the server shuts down mid-stream

    async def next_event(self) -> AnswerEvent | None:
        """The next event, or None at the end. Raises the pipeline's errors, or RequestTimeout."""
        if self.closed:
            return None
        if time.monotonic() > self._deadline:
            await self.close()
            raise RequestTimeout(f"the answer took longer than {self._timeout_s:g} s (FOOTNOTE_REQUEST_TIMEOUT_S)")
        try:
            event = await self._next_unless_stopping()
        except BaseException:
            await self.close()
            raise
        if event is None:
            await self.close()
        return event

    async def _next_unless_stopping(self) -> AnswerEvent | None:
        """The next event; ServerStopping if the server shuts down first (the event being
        computed, at most one sentence, is finished first: a generator cannot be interrupted)."""
        if self.stopping is None:
            return await anyio.to_thread.run_sync(_next, self._events)
        got: list[AnswerEvent | None] = []
        failed: list[BaseException] = []
        async with anyio.create_task_group() as tasks:
            async def get() -> None:
                try:
                    got.append(await anyio.to_thread.run_sync(_next, self._events))
                except Exception as exc:  # raised below as itself, not in an ExceptionGroup
                    failed.append(exc)
                tasks.cancel_scope.cancel()

            async def stop() -> None:
                await self.stopping.wait()  # type: ignore[union-attr]
                tasks.cancel_scope.cancel()

            tasks.start_soon(get)
            tasks.start_soon(stop)
        if failed:
            raise failed[0]
        if self.stopping.is_set():
            raise ServerStopping("the server is shutting down; the answer was cut short, ask again shortly")
        return got[0]

    async def result(self, request: Request | None = None) -> Answer:
        """Drain the run to its answer; stop early if the client disconnects. The pipeline's
        errors arrive as `ApiError`s."""
        try:
            while (event := await self.next_event()) is not None:
                if isinstance(event, Done):
                    return event.answer
                if request is not None and await request.is_disconnected():
                    log.info("client disconnected; generation stopped")
                    raise ApiError(499, "the client closed the request", code="client_closed")
        except Exception as exc:
            error = from_answer_error(exc)
            if error is None or error is exc:
                raise
            raise error from exc
        finally:
            await self.close()
        raise RuntimeError("the answer stream ended without an answer")  # pragma: no cover

    async def close(self) -> None:
        """Stop generating and free the slot (idempotent; safe to call from any task)."""
        if self.closed:
            return
        self.closed = True
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(self._events.close)
            except Exception:  # pragma: no cover - closing must never mask the real outcome
                log.exception("closing an answer stream failed")
            finally:
                self._slot.release()


@dataclass
class BackendState:
    name: str
    usable: bool | None = None  # None: not checked yet
    detail: str = ""
    llm: LLMBackend | None = None  # once loaded: asked whether it is restarting


class Runtime:
    def __init__(self, settings: Settings, service: AnswerService | None = None,
                 container: Container | None = None) -> None:
        self.settings = settings
        self.container = container or Container(settings)
        self.service = service
        self.index_error: str | None = None
        self.store_error: str | None = None  # the shared index's database is unreachable
        self.backend = BackendState(settings.resolved_backend)
        self.queue = GenerationQueue(settings.max_queue, settings.queue_wait_s)
        self.started = int(time.time())
        self._check_lock: anyio.Lock | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self.warm_up)
            tasks.start_soon(self.follow_index)
            yield
            tasks.cancel_scope.cancel()

    async def follow_index(self, every_s: float = 1.0) -> None:
        """Swap in a new index version when `footnote ingest` publishes one (CURRENT changes, or
        the shared store's live version), so documents added while the service runs become
        answerable without a restart. For a shared store this also notices the database going
        away (readiness fails) and coming back (it recovers, and a replica that started
        without an index loads one)."""
        from service.index.stores import StoreUnavailable

        store = self.container.store
        while True:
            await anyio.sleep(every_s)
            try:
                live = await anyio.to_thread.run_sync(store.live_version, abandon_on_cancel=True)
            except StoreUnavailable as exc:
                if self.store_error is None:
                    log.warning("%s; readiness fails until it is back", exc)
                self.store_error = str(exc)
                continue
            except Exception as exc:  # no index or a broken pointer: keep serving what we have
                self.store_error = None
                if store.shared and self.service is None:
                    self.index_error = f"the index could not be loaded: {exc}"
                continue
            if self.store_error is not None:
                log.info("the index store is reachable again")
                self.store_error = None
            service = self.service
            if service is None:
                if store.shared and self.index_error is not None:  # it failed at start: try again
                    self.index_error = None
                    await self.warm_up()
                continue
            if live == service.index.version:
                continue
            try:
                retriever = await anyio.to_thread.run_sync(self.container.open_retriever, abandon_on_cancel=True)
            except Exception:
                log.exception("could not load the new index %s; still serving the previous one", live)
                continue
            service.swap_retriever(retriever)  # requests in flight finish on the index they started with
            log.info("now serving index %s (%d sentences)", live, len(retriever.index.sentences))

    async def warm_up(self) -> None:
        """Open the index (unless a service was given), then load the default backend."""
        if self.service is None:
            try:
                container = self.container
                self.service = await anyio.to_thread.run_sync(  # replicas of a shared store only read it
                    lambda: container.answer_service(container.open_retriever()) if container.store.shared
                    else container.answer_service(quiet=True), abandon_on_cancel=True)
            except Exception as exc:
                log.exception("could not load the index")
                self.index_error = f"the index could not be loaded: {exc}"
                return
        await self.check_backend()

    async def check_backend(self) -> None:
        if self._check_lock is None:
            self._check_lock = anyio.Lock()
        async with self._check_lock:
            if self.backend.usable is not None or self.service is None:
                return
            name = self.backend.name
            if not registry.spec(name).generative:
                self.backend.usable, self.backend.detail = True, "no model needed"
                return
            try:
                llm = await anyio.to_thread.run_sync(self.service.backend, name, abandon_on_cancel=True)
                self.backend.usable, self.backend.detail = True, getattr(llm, "model", name)
                self.backend.llm = llm
            except Exception as exc:
                log.warning("the %s backend is not usable: %s", name, exc)
                self.backend.usable, self.backend.detail = False, str(exc)

    def not_ready_reason(self) -> str | None:
        if self.store_error:
            return self.store_error
        if self.index_error:
            return self.index_error
        if self.service is None:
            return "the index is still loading"
        if self.backend.usable is None:
            return f"the {self.backend.name} backend is still loading"
        if not self.backend.usable and not self.settings.llm_fallback:
            return f"the {self.backend.name} backend is not usable: {self.backend.detail}"
        if self.backend.llm is not None and (problem := self.backend.llm.unavailable()):
            return problem  # e.g. the model process died and is being restarted
        return None

    def require_service(self) -> AnswerService:
        if self.service is None:
            reason = self.index_error or "the index is still loading"
            raise ApiError(503, f"not ready: {reason}", code="not_ready", headers={"Retry-After": "5"})
        return self.service

    # -- answering ---------------------------------------------------------------------------

    def check_question(self, question: str, param: str = "question") -> str:
        try:
            return clean_question(question, self.settings.max_question_chars)
        except InvalidQuestion as exc:
            raise ApiError(422, f"{param}: {exc}", param=param) from exc

    def check_documents(self, documents: Iterable[str] | None) -> list[str] | None:
        if documents is None:
            return None
        docs = list(dict.fromkeys(documents))
        known = self.require_service().index.manifest
        unknown = [d for d in docs if d not in known]
        if unknown:
            raise ApiError(404, f"unknown document id(s): {', '.join(unknown)} (see GET /v1/documents)",
                           code="unknown_document", param="documents")
        return docs

    def choose_backend(self, backend: str | None) -> str:
        """The backend a request may use (the answer service's rule), else a 400 listing them."""
        try:
            return choose_backend(self.settings, backend)
        except UnknownBackend as exc:
            raise from_answer_error(exc) from exc  # type: ignore[misc]

    async def open_run(self, *, backend: str | None, top_k: int | None, documents: list[str] | None,
                       arrived: float, question: str | None = None,
                       conversation: Sequence[ChatMessage] | None = None) -> AnswerRun:
        """Take a generation slot (queued, bounded; none for a backend that runs no model), then
        begin answering `question`, or the conversation's last question made standalone (with
        the model, so inside the slot). Nothing is generated until the first `next_event`; the
        run owns the slot from here on."""
        service = self.require_service()
        name = self.choose_backend(backend)
        slot = await self.queue.acquire() if registry.spec(name).generative else NO_SLOT
        try:
            warnings: list[str] = []
            if conversation is not None:
                rewrite = await anyio.to_thread.run_sync(service.standalone_question, conversation, backend)
                question = rewrite.question
                warnings = [rewrite.warning] if rewrite.warning else []
            assert question is not None, "give a question or a conversation"
            events = service.ask_stream(question, top_k, documents, backend)
        except BaseException:
            slot.release()
            raise
        timeout = self.settings.request_timeout_s
        return AnswerRun(events, slot, arrived + timeout, timeout, question, warnings)


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime
