"""Slow clients: a connection that never finishes its request headers is closed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from service.api.connections import server_config
from tests.api.support import FACT, FakeModel, Q, build_app, cite


@contextmanager
def running(app, settings) -> Iterator[int]:  # noqa: ANN001
    """uvicorn configured as `footnote serve` configures it, on a free loopback port."""
    server = uvicorn.Server(server_config(app, settings, port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_connections_that_dribble_their_headers_are_closed_and_others_are_served(seed_retriever, api_settings):
    settings = api_settings.model_copy(update={"header_timeout_s": 0.5})
    slow: list[socket.socket] = []
    with running(build_app(seed_retriever, settings), settings) as port:
        try:
            for _ in range(30):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
                s.settimeout(5)
                slow.append(s)
            started = time.monotonic()
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                assert client.get("/healthz").status_code == 200  # a normal client is served meanwhile
            assert all(s.recv(1024) == b"" for s in slow)  # closed by the server
            assert time.monotonic() - started < 4
        finally:
            for s in slow:
                s.close()


def test_a_long_answer_is_not_cut_by_the_header_deadline(seed_retriever, api_settings):
    settings = api_settings.model_copy(update={"header_timeout_s": 0.3, "llm": "openai"})
    model = FakeModel(lambda m: f"26 countries pledged to ensure Ukraine's security [{cite(m, FACT)}]. " * 10,
                      chunk=8, delay=0.01)  # ~0.7 s of generation, past the deadline
    with running(build_app(seed_retriever, settings, model), settings) as port:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert client.post("/v1/ask", json={"question": Q}).json()["answerable"]
            assert client.get("/healthz").status_code == 200  # the same connection, reused
