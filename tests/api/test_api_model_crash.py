"""A crash in native model code never takes the HTTP service down: the model runs in a worker
process; when it dies the request gets a clear 503, /readyz says the model is restarting, and
the next question is answered by a new worker."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from service.llm.worker_client import WorkerBackend
from tests.api.support import Q, parse_sse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def worker(monkeypatch):
    monkeypatch.chdir(ROOT)  # the fake worker is imported as tests.llm.fake_model_worker
    backend = WorkerBackend([sys.executable, "-m", "tests.llm.fake_model_worker", "--load-delay", "1.0"],
                            model="fake", queue_wait_s=0.2, timeout_s=30)
    backend.start()
    yield backend
    backend.close()


def wait_ready(c, limit_s: float = 30.0) -> dict:
    until = time.monotonic() + limit_s
    while time.monotonic() < until:
        r = c.get("/readyz")
        if r.status_code == 200:
            return r.json()
        time.sleep(0.1)
    raise AssertionError(f"not ready after {limit_s} s: {r.json()}")


def test_the_service_survives_a_segfaulting_model_and_answers_again(serve, worker):
    live = serve(factory=lambda name: worker, llm="embedded")  # fallback on: a crash still is an error
    with live.client() as c:
        wait_ready(c)
        first_pid = worker.pid

        crashed = c.post("/v1/ask", json={"question": Q + " CRASH"})
        assert crashed.status_code == 503
        assert crashed.headers["retry-after"]
        error = crashed.json()["error"]
        assert error["code"] == "model_restarting"
        assert "SIGSEGV" in error["message"] and "being restarted" in error["message"]

        restarting = c.get("/readyz")
        assert restarting.status_code == 503
        assert "being restarted" in restarting.json()["error"]["message"]
        assert c.get("/healthz").status_code == 200  # the process itself is alive throughout

        wait_ready(c)
        answer = c.post("/v1/ask", json={"question": Q})
        assert answer.status_code == 200, answer.text
        assert answer.json()["answerable"] and answer.json()["backend"] == "embedded"
        assert worker.pid != first_pid


def test_a_crash_mid_stream_ends_the_stream_with_an_error_event(serve, worker):
    live = serve(factory=lambda name: worker, llm="embedded")
    with live.client() as c:
        wait_ready(c)
        r = c.post("/v1/ask", json={"question": Q + " CRASH", "stream": True})
        events = parse_sse(r.text)
        assert events[-1][0] == "error"
        assert json.loads(events[-1][1])["error"]["code"] == "model_restarting"
        wait_ready(c)
        chat = c.post("/v1/chat/completions", json={"model": "footnote", "messages": [{"role": "user", "content": Q}]})
        assert chat.status_code == 200, chat.text
        assert "[1]" in chat.json()["choices"][0]["message"]["content"]
