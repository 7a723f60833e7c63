"""POST /v1/ask: the answer object as JSON and as Server-Sent Events."""

from __future__ import annotations

import json
import logging

import pytest

from service.llm.base import LLMError, LLMTimeout
from tests.api.support import FACT, FakeModel, Q, cite, parse_sse


def without_timings(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timings_ms"}


def test_ask_returns_a_cited_answer(client):
    r = client.post("/v1/ask", json={"question": Q})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["answerable"] and answer["backend"] == "extractive"
    assert "[1]" in answer["answer"]
    citation = answer["citations"][0]
    assert FACT in citation["text"]
    text = client.get(f"/v1/documents/{citation['document']}").json()["text"]
    assert text[citation["start"] : citation["end"]] == citation["text"]


def test_an_unanswerable_question_is_refused(client, api_settings):
    answer = client.post("/v1/ask", json={"question": "What is the boiling point of water?"}).json()
    assert answer == {**answer, "answerable": False, "citations": [], "answer": api_settings.refusal_message}


def test_stream_sends_citations_once_before_their_marker_and_done_equals_the_json_answer(client):
    question = "Which countries will not send troops to Ukraine?"
    plain = client.post("/v1/ask", json={"question": question}).json()
    r = client.post("/v1/ask", json={"question": question, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and kinds.count("done") == 1 and "error" not in kinds

    text, seen = "", set()
    for kind, data in events:
        if kind == "citation":
            n = json.loads(data)["n"]
            assert n not in seen, "a citation was sent twice"
            assert f"[{n}]" not in text, "a citation arrived after its marker"
            seen.add(n)
        elif kind == "delta":
            text += json.loads(data)["text"]
    done = json.loads(events[-1][1])
    assert seen == {c["n"] for c in done["citations"]} and len(seen) >= 1
    assert text == done["answer"]
    assert without_timings(done) == without_timings(plain)


def test_accept_event_stream_also_streams(client):
    r = client.post("/v1/ask", json={"question": Q}, headers={"Accept": "text/event-stream"})
    assert [k for k, _ in parse_sse(r.text)][-1] == "done"


def test_documents_restrict_the_answer(client):
    doc = client.get("/v1/documents").json()["data"][0]["id"]
    answer = client.post("/v1/ask", json={"question": Q, "documents": [doc]}).json()
    assert {c["document"] for c in answer["citations"]} == {doc}


def test_a_generative_backend_answers_through_the_service(serve):
    live = serve(FakeModel(), llm="openai")
    answer = live.client().post("/v1/ask", json={"question": Q}).json()
    assert answer["backend"] == "openai" and answer["model"] == "fake-1" and answer["answerable"]
    assert live.model.stream_calls, "the model was not asked"


def test_backend_failure_falls_back_to_extractive_and_says_so(serve):
    live = serve(FakeModel(fail=LLMTimeout("model too slow")), llm="openai")
    answer = live.client().post("/v1/ask", json={"question": Q}).json()
    assert answer["backend"] == "extractive" and answer["answerable"]
    assert any("model too slow" in w for w in answer["warnings"])


def test_backend_failure_without_fallback_is_a_clean_error(serve):
    live = serve(FakeModel(fail=LLMError("server down")), llm="openai", llm_fallback=False)
    with live.client() as c:
        r = c.post("/v1/ask", json={"question": Q})
        assert r.status_code == 502
        assert r.json()["error"]["code"] == "backend_failed" and "server down" in r.json()["error"]["message"]
        streamed = parse_sse(c.post("/v1/ask", json={"question": Q, "stream": True}).text)
    assert streamed[-1][0] == "error" and json.loads(streamed[-1][1])["error"]["code"] == "backend_failed"
    assert not [k for k, _ in streamed if k == "done"]


def test_a_backend_timeout_without_fallback_is_504(serve):
    live = serve(FakeModel(fail=LLMTimeout("no answer in 60 s")), llm="openai", llm_fallback=False)
    r = live.client().post("/v1/ask", json={"question": Q})
    assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"


def test_an_unexpected_error_is_a_clean_500_and_its_trace_is_logged(serve, caplog):
    live = serve(FakeModel(fail=RuntimeError("secret internals")), llm="openai")
    with caplog.at_level(logging.ERROR, logger="footnote.api"):
        r = live.client().post("/v1/ask", json={"question": Q})
        streamed = live.client().post("/v1/ask", json={"question": Q, "stream": True}).text
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "server_error"
    assert "secret" not in r.text and "Traceback" not in r.text
    assert parse_sse(streamed)[-1][0] == "error" and "secret" not in streamed
    assert any(rec.exc_info and "secret internals" in str(rec.exc_info[1]) for rec in caplog.records)


@pytest.mark.parametrize("body, status, fragment", [
    ({"question": ""}, 422, "question"),
    ({"question": "   \n\t "}, 422, "the question is empty"),
    ({"question": "x" * 2001}, 422, "2000"),
    ({"question": 42}, 422, "question: Input should be a valid string"),
    ({"question": Q, "top_k": "many"}, 422, "top_k"),
    ({"question": Q, "top_k": 0}, 422, "top_k"),
    ({"question": Q, "top_k": True}, 422, "top_k: Input should be a valid integer"),
    ({"question": Q, "top_k": "5"}, 422, "top_k: Input should be a valid integer"),
    ({"question": Q, "backend": "gpt-17"}, 422, "backend"),
    ({"question": Q, "qestion_typo": 1}, 422, "qestion_typo: unknown field"),
    ({}, 422, "question: Field required"),
    ({"question": Q, "documents": ["no-such.txt"]}, 404, "no-such.txt"),
    ({"question": "\ud83d cats"}, 422, "question: "),
    ({"question": Q, "documents": ["\ud800"]}, 422, "documents.0: character 0 is an unpaired surrogate"),
])
def test_invalid_requests_get_a_readable_error(client, body, status, fragment):
    # json.dumps escapes lone surrogates as JSON allows (httpx's json= would fail to encode them)
    r = client.post("/v1/ask", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error" and error["code"]


def test_malformed_json_is_400(client):
    r = client.post("/v1/ask", content=b'{"question": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


def test_a_body_sent_without_json_content_type_gets_a_hint(client):
    r = client.post("/v1/ask", content=json.dumps({"question": Q}),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422 and "Content-Type: application/json" in r.json()["error"]["message"]


def test_unknown_route_and_wrong_method(client):
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get("/v1/ask")
    assert r.status_code == 405 and "POST" in r.json()["error"]["message"]


def test_a_client_cannot_pick_a_backend_the_operator_did_not_enable(serve):
    asked: list[str] = []

    def factory(name: str):  # noqa: ANN202 - records every backend the server tries to load
        asked.append(name)
        return FakeModel()

    live = serve(factory=factory, llm="extractive")  # default allow-list: extractive only
    with live.client() as c:
        for backend in ("embedded", "openai"):
            r = c.post("/v1/ask", json={"question": Q, "backend": backend})
            assert r.status_code == 400, r.text
            error = r.json()["error"]
            assert error["code"] == "backend_not_allowed" and error["param"] == "backend"
            assert repr(backend) in error["message"] and "choose one of extractive" in error["message"]
            streamed = c.post("/v1/ask", json={"question": Q, "backend": backend, "stream": True})
            assert streamed.status_code == 400
        assert c.post("/v1/ask", json={"question": Q, "backend": "extractive"}).status_code == 200
    assert asked == []  # nothing was loaded or contacted


def test_the_operator_can_enable_more_backends(serve):
    live = serve(FakeModel(), llm="extractive", allowed_backends="extractive,openai")
    answer = live.client().post("/v1/ask", json={"question": Q, "backend": "openai"}).json()
    assert answer["backend"] == "openai" and live.model.stream_calls
    r = live.client().post("/v1/ask", json={"question": Q, "backend": "embedded"})
    assert r.status_code == 400 and "extractive, openai" in r.json()["error"]["message"]


def test_a_server_shutting_down_mid_stream_ends_it_with_an_error_event(serve):
    from sse_starlette.sse import AppStatus

    live = serve(FakeModel(lambda m: f"26 countries pledged to ensure Ukraine's security [{cite(m, FACT)}]. " * 40,
                           chunk=8, delay=0.02), llm="openai", answer_check=False)  # sentences stream as they come
    body = ""
    try:
        with live.client() as c, c.stream("POST", "/v1/ask", json={"question": Q, "stream": True}) as r:
            for line in r.iter_lines():
                body += line + "\n"
                if line == "event: delta" and not AppStatus.should_exit:
                    AppStatus.should_exit = True  # what uvicorn's SIGTERM handler sets
    finally:
        AppStatus.should_exit = False  # process-wide: other servers in this test run go on
    events = parse_sse(body)
    assert [k for k, _ in events].count("delta") < 40, "the stream was not cut short"
    assert events[-1][0] == "error", events[-3:]
    assert json.loads(events[-1][1])["error"]["code"] == "shutting_down"
    assert live.model.closed.wait(5)  # and the generation stopped
