"""Body size, the generation queue, timeouts, disconnects, and a free event loop under load."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx
import pytest

from tests.api.support import FACT, FakeModel, Q, cite


def repeating(sentences: int):
    """A reply of `sentences` cited sentences (each verified and streamed on its own)."""
    return lambda m: f"26 countries pledged to ensure Ukraine's security [{cite(m, FACT)}]. " * sentences


def slow_model(sentences: int = 40, delay: float = 0.01) -> FakeModel:
    return FakeModel(repeating(sentences), chunk=8, delay=delay)  # ~7 chunks per sentence


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_a_declared_body_over_the_limit_is_413(client, api_settings):
    big = json.dumps({"question": "x" * (api_settings.max_body_bytes + 10)})
    r = client.post("/v1/ask", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_a_chunked_body_over_the_limit_is_413(client, api_settings):
    def chunks():
        yield b'{"question": "'
        for _ in range(api_settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = client.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "FOOTNOTE_MAX_BODY_BYTES" in r.json()["error"]["message"]


def test_queue_full_is_429_with_retry_after_and_queued_requests_complete(serve):
    model = slow_model(sentences=12, delay=0.01)  # ~1 s per answer
    live = serve(model, llm="openai", max_queue=1)
    queue = live.runtime.queue
    with ThreadPoolExecutor(2) as pool, live.client() as c:
        running = pool.submit(c.post, "/v1/ask", json={"question": Q})
        wait_for(lambda: queue.running == 1)
        waiting = pool.submit(c.post, "/v1/ask", json={"question": Q})
        wait_for(lambda: queue.waiting == 1)
        rejected = c.post("/v1/ask", json={"question": Q})
        chat = c.post("/v1/chat/completions", json={"model": "footnote", "messages": [{"role": "user", "content": Q}]})
        extractive = c.post("/v1/ask", json={"question": Q, "backend": "extractive"})  # needs no model
        assert rejected.status_code == 429 and chat.status_code == 429
        assert int(rejected.headers["Retry-After"]) >= 1
        assert rejected.json()["error"]["code"] == "queue_full"
        assert extractive.status_code == 200
        assert running.result().status_code == 200 and waiting.result().status_code == 200
    assert queue.running == 0 and queue.waiting == 0


def test_waiting_longer_than_the_queue_wait_is_503_with_retry_after(serve):
    live = serve(slow_model(sentences=12), llm="openai", queue_wait_s=0.2)
    with ThreadPoolExecutor(1) as pool, live.client() as c:
        running = pool.submit(c.post, "/v1/ask", json={"question": Q})
        wait_for(lambda: live.runtime.queue.running == 1)
        r = c.post("/v1/ask", json={"question": Q})
        assert r.status_code == 503 and r.headers["Retry-After"] and r.json()["error"]["code"] == "queue_timeout"
        assert running.result().status_code == 200


def test_an_answer_past_the_request_timeout_is_504_and_generation_stops(serve):
    model = slow_model(sentences=100)  # ~7 s
    live = serve(model, llm="openai", request_timeout_s=0.5)
    started = time.monotonic()
    r = live.client().post("/v1/ask", json={"question": Q})
    assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
    assert time.monotonic() - started < 3
    assert model.closed.wait(2) and model.chunks_sent < model.total_chunks
    assert live.runtime.queue.running == 0  # the slot was given back


def test_a_client_leaving_a_stream_stops_the_generation(serve):
    model = slow_model(sentences=100)  # ~7 s if nobody stops it
    live = serve(model, llm="openai", answer_check=False)  # unchecked: sentences stream as they come
    with live.client() as c, c.stream("POST", "/v1/ask", json={"question": Q, "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("event: delta"):
                break  # leave after the first verified sentence
    assert model.closed.wait(3), "the model's stream was not closed"
    assert model.chunks_sent < model.total_chunks
    wait_for(lambda: live.runtime.queue.running == 0, timeout=3)


def test_a_client_leaving_a_checked_stream_before_any_text_stops_the_generation(serve):
    model = slow_model(sentences=100)  # ~7 s; a checked answer shows nothing before it ends
    live = serve(model, llm="openai", answer_check=True)
    with live.client() as c, c.stream("POST", "/v1/ask", json={"question": Q, "stream": True}) as r:
        assert r.status_code == 200
        assert model.started.wait(3)
        time.sleep(0.3)  # leave while the model is still writing
    assert model.closed.wait(3), "the model's stream was not closed"
    assert model.chunks_sent < model.total_chunks
    wait_for(lambda: live.runtime.queue.running == 0, timeout=3)


def test_a_client_leaving_a_chat_stream_stops_the_generation(serve):
    model = slow_model(sentences=100)
    live = serve(model, llm="openai", answer_check=False)
    body = {"model": "footnote", "stream": True, "messages": [{"role": "user", "content": Q}]}
    with live.client() as c, c.stream("POST", "/v1/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if '"content": "26' in line or '"content": " 26' in line:
                break
    assert model.closed.wait(3) and model.chunks_sent < model.total_chunks


def test_a_client_leaving_a_plain_request_stops_the_generation(serve):
    model = slow_model(sentences=100)
    live = serve(model, llm="openai")
    with pytest.raises(httpx.ReadTimeout):
        live.client(timeout=0.8).post("/v1/ask", json={"question": Q})
    assert model.closed.wait(3) and model.chunks_sent < model.total_chunks


def test_healthz_answers_in_milliseconds_while_answers_generate(serve):
    model = slow_model(sentences=15, delay=0.03)  # ~3 s an answer: a blocked loop would show it
    live = serve(model, llm="openai")
    with ThreadPoolExecutor(2) as pool, live.client() as c:
        answers = [pool.submit(c.post, "/v1/ask", json={"question": Q}) for _ in range(2)]
        assert model.started.wait(5)
        latencies = []
        for _ in range(20):
            t = time.perf_counter()
            assert c.get("/healthz").status_code == 200
            latencies.append(time.perf_counter() - t)
            time.sleep(0.01)
        assert not answers[0].done() or not answers[1].done(), "generation ended before the probes"
        assert all(a.result().status_code == 200 for a in answers)
    latencies.sort()
    # Loose bounds, far below the seconds a blocked event loop would take (no speed target here).
    assert latencies[len(latencies) // 2] < 0.2 and latencies[-1] < 0.75, latencies


def test_a_slow_client_body_does_not_block_others(client):
    """A client that sends half a body and stalls holds only its own request."""
    url = urlparse(str(client.base_url))
    stalled = socket.create_connection((url.hostname, url.port))
    try:
        stalled.sendall(b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100\r\n\r\n{\"question\": ")
        done = threading.Event()
        threading.Thread(target=lambda: (client.get("/healthz"), done.set()), daemon=True).start()
        assert done.wait(2)
    finally:
        stalled.close()


def test_a_burst_on_an_idle_queue_lets_one_run_max_queue_wait_and_turns_the_rest_away_at_once():
    import anyio

    from service.api.errors import ApiError
    from service.api.limits import GenerationQueue

    async def burst() -> tuple[list[int], float]:
        queue = GenerationQueue(max_waiting=1, wait_s=30)
        statuses: list[int] = []
        turned_away_at: list[float] = []
        finished_at: list[float] = []

        async def request() -> None:
            try:
                slot = await queue.acquire()
            except ApiError as exc:
                statuses.append(exc.status)
                turned_away_at.append(time.monotonic())
                return
            await anyio.sleep(0.2)  # generating
            statuses.append(200)
            finished_at.append(time.monotonic())
            slot.release()

        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(request)
        return statuses, max(turned_away_at) < min(finished_at)

    statuses, turned_away_at_once = anyio.run(burst)
    assert sorted(statuses) == [200, 200] + [429] * 18
    assert turned_away_at_once  # before the first answer finished, not after waiting for a turn
