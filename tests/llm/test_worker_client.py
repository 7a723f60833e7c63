"""The model worker boundary: a worker that dies (segfault, abort, hang) fails only the request
in flight, with a clear message; the worker is restarted and the next request is answered."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from service.llm.base import Generation, LLMCrashed, LLMError, LLMTimeout
from service.llm.worker_client import WorkerBackend, describe_exit

ROOT = Path(__file__).resolve().parents[2]


def prompt(question: str) -> list[dict]:
    return [{"role": "system", "content": "rules"},
            {"role": "user", "content": f"Sentences:\n[1] The bridge cost 3 million kronor.\n[2] It opened in May.\n\nQuestion: {question}"}]


def fake_backend(*args: str, timeout_s: float = 30.0, queue_wait_s: float = 30.0) -> WorkerBackend:
    command = [sys.executable, "-m", "tests.llm.fake_model_worker", *args]
    backend = WorkerBackend(command, model="fake", queue_wait_s=queue_wait_s, timeout_s=timeout_s)
    return backend


@pytest.fixture()
def backend(monkeypatch):
    monkeypatch.chdir(ROOT)  # the fake worker is imported as tests.llm.fake_model_worker
    b = fake_backend()
    b.start()
    yield b
    b.close()


def wait_until_ready(backend: WorkerBackend, limit_s: float = 30.0) -> None:
    until = time.monotonic() + limit_s
    while backend.unavailable() and time.monotonic() < until:
        time.sleep(0.05)
    assert backend.unavailable() is None, backend.unavailable()


def test_streams_deltas_then_one_generation(backend):
    items = list(backend.stream(prompt("What did it cost?"), max_tokens=64))
    assert all(isinstance(i, str) for i in items[:-1]) and isinstance(items[-1], Generation)
    assert "".join(items[:-1]) == items[-1].text == "The bridge cost 3 million kronor [1]."
    assert items[-1].model == "fake-worker-model"


@pytest.mark.parametrize("trigger, signal_name", [("CRASH", "SIGSEGV"), ("ABORT", "SIGABRT")])
def test_a_dying_worker_fails_one_request_and_is_restarted(backend, trigger, signal_name):
    first_pid = backend.pid
    with pytest.raises(LLMCrashed) as caught:
        backend.generate(prompt(f"{trigger} please"), max_tokens=64)
    message = str(caught.value)
    assert signal_name in message and "restarted" in message
    wait_until_ready(backend)
    assert backend.pid != first_pid and backend.restarts == 1
    assert backend.generate(prompt("What did it cost?"), max_tokens=64).text.startswith("The bridge cost")


def test_a_request_during_the_restart_waits_for_the_new_worker(monkeypatch):
    monkeypatch.chdir(ROOT)
    backend = fake_backend("--load-delay", "0.5")
    backend.start()
    try:
        with pytest.raises(LLMCrashed):
            backend.generate(prompt("CRASH"), max_tokens=64)
        assert "being restarted" in (backend.unavailable() or "")
        # Not ready yet: this request waits (up to the queue wait) instead of failing.
        assert backend.generate(prompt("What did it cost?"), max_tokens=64).text.startswith("The bridge")
    finally:
        backend.close()


def test_a_hung_worker_times_out_and_is_replaced(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("service.llm.worker_client.WorkerBackend._silence_limit", lambda self: 1.0)
    backend = fake_backend(timeout_s=0.5)
    backend.start()
    try:
        first_pid = backend.pid
        with pytest.raises(LLMTimeout):
            backend.generate(prompt("HANG"), max_tokens=64)
        wait_until_ready(backend)
        assert backend.pid != first_pid
        assert backend.generate(prompt("What did it cost?"), max_tokens=64).text.startswith("The bridge")
    finally:
        backend.close()


def test_closing_a_stream_early_cancels_the_generation_and_frees_the_slot(backend):
    stream = backend.stream(prompt("SLOW"), max_tokens=64)
    assert isinstance(next(stream), str)
    pid = backend.pid
    stream.close()
    # Same worker (cancelled, not killed), and the next answer is not mixed with the old one.
    assert backend.generate(prompt("What did it cost?"), max_tokens=64).text == "The bridge cost 3 million kronor [1]."
    assert backend.pid == pid and backend.restarts == 0


def test_a_model_that_cannot_load_is_a_clear_error(monkeypatch):
    monkeypatch.chdir(ROOT)
    backend = fake_backend("--fail-load")
    with pytest.raises(LLMError, match="could not start: the model file is corrupt"):
        backend.start()
    assert "corrupt" in (backend.unavailable() or "")


def test_exit_descriptions_name_the_signal():
    assert describe_exit(-11) == "was killed by SIGSEGV"
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(1) == "exited with status 1"


def test_option_probabilities_come_back_through_the_worker(backend):
    probabilities = backend.choice_probabilities(prompt("Does it cost money?"), ["yes", "no"])
    assert probabilities == {"yes": 0.95, "no": 0.05}
    assert backend.generate(prompt("What did it cost?"), max_tokens=64).text.startswith("The bridge cost")


def test_the_answerable_probe_comes_back_through_the_worker(backend):
    assert backend.answerability(prompt("What did it cost?")) == 0.9
    assert backend.answerability(prompt("UNANSWERABLE: what did it weigh?")) == 0.2
    with pytest.raises(LLMError, match="reading the prompt"):
        backend.answerability(prompt("PROBEFAIL"))
    assert backend.generate(prompt("What did it cost?"), max_tokens=64).text.startswith("The bridge cost")
