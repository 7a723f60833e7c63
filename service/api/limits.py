"""Limits that keep the service responsive: request body size and the generation queue.

The embedded model generates one answer at a time. Requests that need a generative backend take
a slot from `GenerationQueue`: one runs, up to FOOTNOTE_MAX_QUEUE wait (each at most
FOOTNOTE_QUEUE_WAIT_S, else 503), and any more are turned away at once with 429. Both carry
`Retry-After`, estimated from how long recent generations held the slot. A backend that runs
no model (the registry says which: extractive) skips the queue.

This is the one gate HTTP requests pass. The embedded backend still serialises its own
generations (service/llm/embedded.py) for callers outside HTTP; that moves into its worker
client (issue 9).
"""

from __future__ import annotations

import math
import time

import anyio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import ApiError, error_body

BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class BodyLimitMiddleware:
    """Answer 413 when a request body exceeds `max_bytes` (declared or actually sent).

    The body is read here, bounded, and replayed to the app; a JSON API's bodies are small.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> JSONResponse:
        message = f"the request body is larger than {self.max_bytes} bytes (FOOTNOTE_MAX_BODY_BYTES)"
        return JSONResponse(error_body(413, message), status_code=413, headers={"Connection": "close"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        if scope["method"] in BODYLESS and declared is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls wait for the disconnect, as usual

        await self.app(scope, replay, send)


class Slot:
    """A turn at generating; `release()` (idempotent) hands it to the next waiter."""

    def __init__(self, queue: GenerationQueue | None) -> None:
        self._queue = queue
        self._since = time.monotonic()

    def release(self) -> None:
        queue, self._queue = self._queue, None
        if queue is not None:
            queue._release(time.monotonic() - self._since)


class GenerationQueue:
    def __init__(self, max_waiting: int, wait_s: float, initial_estimate_s: float = 10.0) -> None:
        self.max_waiting = max_waiting
        self.wait_s = wait_s
        self.running = 0
        self.waiting = 0
        self._mean_s = initial_estimate_s  # moving average of how long a generation holds the slot
        self._semaphore = anyio.Semaphore(1)

    def retry_after(self) -> int:
        """Seconds until a new request would likely get a turn."""
        return max(1, min(300, math.ceil(self._mean_s * (self.waiting + self.running))))

    async def acquire(self) -> Slot:
        # Running or about to: a burst on an idle queue counts too (one runs, max_waiting wait).
        if self.running + self.waiting >= 1 + self.max_waiting:
            raise ApiError(
                429, f"the model is busy and {self.waiting} request(s) are already waiting "
                     f"(FOOTNOTE_MAX_QUEUE={self.max_waiting}); retry later",
                code="queue_full", headers={"Retry-After": str(self.retry_after())})
        self.waiting += 1
        try:
            with anyio.fail_after(self.wait_s):
                await self._semaphore.acquire()
        except TimeoutError:
            raise ApiError(
                503, f"waited {self.wait_s:g} s for the model without getting a turn "
                     f"(FOOTNOTE_QUEUE_WAIT_S); retry later",
                code="queue_timeout", headers={"Retry-After": str(self.retry_after())}) from None
        finally:
            self.waiting -= 1
        self.running += 1
        return Slot(self)

    def _release(self, held_s: float) -> None:
        self.running -= 1
        self._mean_s = 0.7 * self._mean_s + 0.3 * held_s
        self._semaphore.release()


NO_SLOT = Slot(None)
