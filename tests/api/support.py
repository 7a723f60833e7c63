"""Helpers for the HTTP API tests (fixtures are in conftest.py).

- `FakeModel`: a generative backend that streams a scripted reply (optionally slowly) and
  records what happened (calls, chunks sent, whether its stream was closed).
- `LiveServer`: uvicorn serving an app on 127.0.0.1 (a free port) in a background thread.
- `parse_sse`: a Server-Sent Events body as [(event, data)].
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import uvicorn

from service.answer.service import AnswerService
from service.api.app import create_app
from service.llm.base import ChatMessage, Generation
from service.settings import Settings

Q = "How many countries pledged to ensure Ukraine's security after the conflict ended?"
FACT = "26 countries had pledged to ensure Ukraine's security"


def context_lines(messages: list[ChatMessage]) -> dict[int, str]:
    """{n: sentence} of the numbered context in an answer prompt (its last user turn)."""
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\[(\d+)\] (.*)$", messages[-1]["content"], re.M)}


def cite(messages: list[ChatMessage], fragment: str) -> int:
    for n, text in context_lines(messages).items():
        if fragment in text:
            return n
    raise AssertionError(f"no context sentence contains {fragment!r}")


def first_sentence_reply(messages: list[ChatMessage]) -> str:
    """Quote the first context sentence, cited: always verifiable."""
    n, text = next(iter(context_lines(messages).items()))
    return f"{text.rstrip('.')} [{n}]."


class FakeModel:
    """A scripted generative backend (the `LLMBackend` protocol)."""

    name = "fake"
    model = "fake-1"

    def __init__(self, reply: str | Callable[[list[ChatMessage]], str] = first_sentence_reply, *,
                 chunk: int = 8, delay: float = 0.0, fail: Exception | None = None,
                 rewrite: str = "", rewrite_fail: Exception | None = None) -> None:
        self.reply, self.chunk, self.delay, self.fail = reply, chunk, delay, fail
        self.rewrite, self.rewrite_fail = rewrite, rewrite_fail
        self.stream_calls: list[list[ChatMessage]] = []
        self.generate_calls: list[list[ChatMessage]] = []
        self.started = threading.Event()
        self.closed = threading.Event()
        self.chunks_sent = 0
        self.total_chunks = 0

    def unavailable(self) -> str | None:
        return None

    def choice_probabilities(self, messages, options) -> dict[str, float]:  # noqa: ANN001 - the answer check
        return {"yes": 0.95, "no": 0.05}

    def answerability(self, messages) -> float | None:  # noqa: ANN001 - no probe, like a remote server
        return None

    def generate(self, messages, *, max_tokens, stop=None) -> Generation:  # the follow-up rewrite
        self.generate_calls.append(messages)
        if self.rewrite_fail:
            raise self.rewrite_fail
        return Generation(self.rewrite, self.model, 50, 10)

    def stream(self, messages, *, max_tokens, stop=None) -> Iterator[str | Generation]:
        self.stream_calls.append(messages)
        self.started.set()
        try:
            if self.fail:
                raise self.fail
            text = self.reply(messages) if callable(self.reply) else self.reply
            pieces = [text[i : i + self.chunk] for i in range(0, len(text), self.chunk)]
            self.total_chunks = len(pieces)
            for piece in pieces:
                if self.delay:
                    time.sleep(self.delay)
                self.chunks_sent += 1
                yield piece
            yield Generation(text, self.model, 120, len(pieces))
        finally:
            self.closed.set()


@dataclass
class Live:
    url: str
    app: object
    model: FakeModel | None

    @property
    def runtime(self):  # noqa: ANN201 - service.api.runtime.Runtime
        return self.app.state.runtime

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30), **kwargs)


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, app) -> None:  # noqa: ANN001
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def build_app(retriever, settings: Settings, model: FakeModel | None = None, factory=None):  # noqa: ANN001, ANN201
    fake = model or FakeModel()
    return create_app(settings, AnswerService(retriever, settings, factory or (lambda name: fake)))


def parse_sse(text: str) -> list[tuple[str, str]]:
    """[(event, data)] of a Server-Sent Events body (comments skipped, data lines joined)."""
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        name, data = "message", []
        for line in re.split(r"\r?\n", block):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            events.append((name, "\n".join(data)))
    return events
