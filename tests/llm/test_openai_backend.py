"""The OpenAI-compatible backend.

Completions replay HTTP recorded with pytest-recording against a real OpenAI-compatible
server: llama.cpp's server running the embedded model on 127.0.0.1:8765 (see
tests/cassettes/README.md to re-record). Errors and timeouts come from a small local server
that the test runs, since a healthy model server does not produce them on demand.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.llm.base import Generation, LLMError, LLMTimeout
from service.llm.openai_backend import OpenAIBackend
from service.settings import Settings

RECORDED_SERVER = "http://127.0.0.1:8765/v1"
RECORDED_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"
MESSAGES = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "What colour is a clear daytime sky?"},
]


def recorded_backend() -> OpenAIBackend:
    return OpenAIBackend(Settings(openai_base_url=RECORDED_SERVER, llm_model=RECORDED_MODEL, llm_max_retries=0))


@pytest.mark.vcr
def test_generate_returns_the_text_and_usage():
    generation = recorded_backend().generate(MESSAGES, max_tokens=24)
    assert "blue" in generation.text.lower()
    assert generation.prompt_tokens > 10 and 0 < generation.completion_tokens <= 24


@pytest.mark.vcr
def test_stream_yields_deltas_then_one_generation():
    items = list(recorded_backend().stream(MESSAGES, max_tokens=24))
    deltas, final = items[:-1], items[-1]
    assert isinstance(final, Generation) and all(isinstance(d, str) for d in deltas)
    assert len(deltas) > 1  # really streamed, not one blob
    assert "".join(deltas) == final.text and "blue" in final.text.lower()


class _Scripted(BaseHTTPRequestHandler):
    """Answers each POST with the next scripted (status, headers, delay) entry."""

    script: list[tuple[int, dict, float]] = []
    hits: list[float] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).hits.append(time.monotonic())
        status, headers, delay = self.script[min(len(self.hits) - 1, len(self.script) - 1)]
        time.sleep(delay)
        body = b'{"error": {"message": "scripted", "type": "server_error"}}'
        if status == 200:
            body = (b'{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,'
                    b'"message":{"role":"assistant","content":"blue"},"finish_reason":"stop"}],'
                    b'"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}')
        try:
            self.send_response(status)
            for k, v in {"content-type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test)

    def log_message(self, *args):
        pass


@pytest.fixture()
def scripted_server():
    def start(script):
        handler = type("Handler", (_Scripted,), {"script": script, "hits": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/v1", handler

    servers: list[ThreadingHTTPServer] = []
    yield start
    for server in servers:
        server.shutdown()


def test_rate_limits_are_retried_honouring_retry_after(scripted_server):
    url, handler = scripted_server([(429, {"retry-after": "1"}, 0), (200, {}, 0)])
    backend = OpenAIBackend(Settings(openai_base_url=url, llm_max_retries=2))
    assert backend.generate(MESSAGES, max_tokens=4).text == "blue"
    assert len(handler.hits) == 2
    assert handler.hits[1] - handler.hits[0] >= 0.9  # waited as the server asked


def test_server_errors_are_retried_then_reported_clearly(scripted_server):
    url, handler = scripted_server([(500, {"retry-after": "0"}, 0)])
    backend = OpenAIBackend(Settings(openai_base_url=url, llm_max_retries=2))
    with pytest.raises(LLMError, match="HTTP 500"):
        backend.generate(MESSAGES, max_tokens=4)
    assert len(handler.hits) == 3  # the first try and two retries


def test_a_slow_server_times_out(scripted_server):
    url, _ = scripted_server([(200, {}, 3.0)])
    backend = OpenAIBackend(Settings(openai_base_url=url, llm_timeout_s=0.5, llm_max_retries=0))
    started = time.monotonic()
    with pytest.raises(LLMTimeout):
        backend.generate(MESSAGES, max_tokens=4)
    assert time.monotonic() - started < 2.5


def test_an_unreachable_server_is_a_clear_error():
    backend = OpenAIBackend(Settings(openai_base_url="http://127.0.0.1:9/v1", llm_max_retries=0))
    with pytest.raises(LLMError, match="cannot reach"):
        backend.generate(MESSAGES, max_tokens=4)


def test_without_a_key_or_base_url_the_backend_contacts_no_one():
    # Otherwise the client would default to https://api.openai.com/v1, a host nobody configured.
    with pytest.raises(LLMError, match="not configured: set OPENAI_BASE_URL"):
        OpenAIBackend(Settings(openai_api_key=None, openai_base_url=None))


def test_yes_no_probabilities_come_from_the_first_tokens_top_logprobs():
    import math

    from service.llm.openai_backend import probabilities_from_top

    tops = [("Yes", math.log(0.6)), (" yes", math.log(0.1)), ("No", math.log(0.2)), ("Maybe", math.log(0.1))]
    p = probabilities_from_top(tops, ["yes", "no"])
    assert abs(p["yes"] - 0.7 / 0.9) < 1e-9 and abs(p["no"] - 0.2 / 0.9) < 1e-9
    assert probabilities_from_top([("no", 0.0)], ["yes", "no"]) == {"yes": 0.0, "no": 1.0}  # a server without logprobs
    assert probabilities_from_top([("Perhaps", 0.0)], ["yes", "no"]) == {"yes": 0.5, "no": 0.5}
