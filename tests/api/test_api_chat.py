"""The OpenAI-compatible endpoints, driven by the official `openai` client."""

from __future__ import annotations

import json

import openai
import pytest

from service.llm.base import LLMError
from tests.api.support import FACT, FakeModel, Q, cite

ITALY = "Who is the Prime Minister of Italy?"
BULGARIA_FACT = "Bulgarian Prime Minister Rosen Zhelyazkov"


def make_client(live, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def oai(server):
    return make_client(server)


def test_models_are_listed_and_retrievable(oai):
    ids = [m.id for m in oai.models.list()]
    assert ids[0] == "footnote" and "footnote-extractive" in ids
    assert oai.models.retrieve("footnote-extractive").id == "footnote-extractive"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("gpt-4o")


def test_models_lists_exactly_the_backends_the_operator_enabled(serve):
    asked: list[str] = []
    live = serve(factory=lambda name: asked.append(name) or FakeModel(), llm="extractive")
    client = make_client(live)
    enabled = ["footnote", "footnote-markdown", "footnote-extractive"]
    assert [m.id for m in client.models.list()] == enabled
    for model in ("footnote-embedded", "footnote-openai", "footnote-embedded-markdown"):
        with pytest.raises(openai.NotFoundError, match=f"use one of: {', '.join(enabled)}"):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"},
                                                                  {"role": "assistant", "content": "Hello"},
                                                                  {"role": "user", "content": Q}])
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve(model)
    assert asked == []  # not even the follow-up rewrite loaded a backend

    wider = make_client(serve(FakeModel(), llm="openai", allowed_backends="embedded"))
    assert [m.id for m in wider.models.list()] == ["footnote", "footnote-markdown", "footnote-openai",
                                                   "footnote-embedded"]


def test_completion_carries_markers_and_the_citations_extension(oai):
    completion = oai.chat.completions.create(model="footnote", messages=[{"role": "user", "content": Q}])
    assert completion.object == "chat.completion" and completion.model == "footnote"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert "[1]" in choice.message.content
    citations = completion.model_extra["citations"]
    assert citations[0]["n"] == 1 and FACT in citations[0]["text"]
    assert completion.model_extra["footnote"]["question"] == Q


def test_streaming_sends_chunks_then_citations_on_the_final_chunk(oai):
    stream = oai.chat.completions.create(model="footnote", messages=[{"role": "user", "content": Q}],
                                         stream=True, stream_options={"include_usage": True})
    chunks = list(stream)  # the client stops at data: [DONE]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finals) == 1
    with_citations = [c for c in chunks if (c.model_extra or {}).get("citations") is not None]
    assert with_citations == finals, "citations travel on the final chunk only"
    citations = finals[0].model_extra["citations"]
    assert "[1]" in content and FACT in citations[0]["text"]
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    plain = oai.chat.completions.create(model="footnote", messages=[{"role": "user", "content": Q}])
    assert content == plain.choices[0].message.content


def test_a_follow_up_is_rewritten_and_answered(oai):
    first = oai.chat.completions.create(model="footnote-extractive",
                                        messages=[{"role": "user", "content": ITALY}])
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": ITALY},
                {"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": "And Bulgaria?"}]
    for stream in (False, True):
        if stream:
            chunks = list(oai.chat.completions.create(model="footnote", messages=messages, stream=True))
            extra = next(c.model_extra for c in chunks if c.choices and c.choices[0].finish_reason)
        else:
            extra = oai.chat.completions.create(model="footnote", messages=messages).model_extra
        assert extra["footnote"]["question"] == "Who is the Prime Minister of Bulgaria?"
        assert BULGARIA_FACT in extra["citations"][0]["text"]


def test_a_generative_backend_rewrites_the_follow_up_with_the_prompt_file(serve):
    model = FakeModel(reply=lambda m: f"Rosen Zhelyazkov is the Prime Minister of Bulgaria [{cite(m, BULGARIA_FACT)}].",
                      rewrite="Standalone question: Who is the Prime Minister of Bulgaria?")
    live = serve(model, llm="openai")
    completion = make_client(live).chat.completions.create(model="footnote", messages=[
        {"role": "user", "content": ITALY},
        {"role": "assistant", "content": "Giorgia Meloni [1]."},
        {"role": "user", "content": "and bulgaria"}])
    assert len(model.generate_calls) == 1
    prompt = model.generate_calls[0][-1]["content"]
    assert f"User: {ITALY}" in prompt and "Assistant: Giorgia Meloni." in prompt  # markers dropped
    assert prompt.rstrip().endswith("Last question: and bulgaria\nStandalone question:")
    extra = completion.model_extra
    assert extra["footnote"]["question"] == "Who is the Prime Minister of Bulgaria?"
    assert "Question: Who is the Prime Minister of Bulgaria?" in model.stream_calls[0][-1]["content"]
    assert BULGARIA_FACT in extra["citations"][0]["text"] and extra["footnote"]["backend"] == "openai"


def test_a_failed_rewrite_falls_back_to_the_heuristic(serve):
    live = serve(FakeModel(rewrite_fail=LLMError("rewrite failed")), llm="openai")
    completion = make_client(live).chat.completions.create(model="footnote", messages=[
        {"role": "user", "content": ITALY}, {"role": "user", "content": "What about Bulgaria?"}])
    info = completion.model_extra["footnote"]
    assert info["question"] == "Who is the Prime Minister of Bulgaria?"
    assert any("rewrite failed" in w for w in info["warnings"])


def test_a_first_question_is_not_rewritten(serve):
    model = FakeModel()
    live = serve(model, llm="openai")
    make_client(live).chat.completions.create(model="footnote", messages=[{"role": "user", "content": Q}])
    assert model.generate_calls == [] and len(model.stream_calls) == 1


def test_unsupported_parameters_are_ignored_or_rejected_cleanly(oai):
    completion = oai.chat.completions.create(
        model="footnote", messages=[{"role": "user", "content": [{"type": "text", "text": Q}]}],
        temperature=0.7, top_p=0.5, max_tokens=5, stop=["x"], seed=3, user="u1", presence_penalty=1)
    assert "[1]" in completion.choices[0].message.content
    with pytest.raises(openai.UnprocessableEntityError, match="only one choice"):
        oai.chat.completions.create(model="footnote", messages=[{"role": "user", "content": Q}], n=2)
    with pytest.raises(openai.NotFoundError, match="footnote-extractive"):
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": Q}])
    with pytest.raises(openai.UnprocessableEntityError, match="no user message"):
        oai.chat.completions.create(model="footnote", messages=[{"role": "system", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError, match="empty"):
        oai.chat.completions.create(model="footnote", messages=[{"role": "user", "content": "  "}])
    with pytest.raises(openai.NotFoundError, match="nope.txt"):
        oai.chat.completions.create(model="footnote", messages=[{"role": "user", "content": Q}],
                                    extra_body={"documents": ["nope.txt"]})
    with pytest.raises(openai.UnprocessableEntityError, match="top_k: Input should be a valid integer"):
        oai.chat.completions.create(model="footnote", messages=[{"role": "user", "content": Q}],
                                    extra_body={"top_k": True})


def test_a_failure_mid_stream_reaches_the_client_as_an_error(serve):
    live = serve(FakeModel(fail=LLMError("server down")), llm="openai", llm_fallback=False)
    stream = make_client(live).chat.completions.create(model="footnote", stream=True,
                                                       messages=[{"role": "user", "content": Q}])
    with pytest.raises(openai.APIError, match="server down"):
        list(stream)


@pytest.mark.parametrize("extra", [
    {"messages": [{"role": "user", "content": "\ud83d cats"}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "dogs \udfff"}]}]},
    {"messages": [{"role": "user", "content": Q}], "documents": ["\ud800"]},
    {"messages": [{"role": "user", "content": Q}], "model": "footnote-\ud800"},
])
def test_unpaired_surrogates_are_rejected_as_422(client, extra):
    body = json.dumps({"model": "footnote", **extra})  # escapes lone surrogates as JSON allows
    r = client.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "unpaired surrogate" in r.json()["error"]["message"]


def test_a_server_shutting_down_mid_stream_ends_the_chat_stream_with_an_error(serve):
    from sse_starlette.sse import AppStatus

    live = serve(FakeModel(lambda m: f"26 countries pledged to ensure Ukraine's security [{cite(m, FACT)}]. " * 40,
                           chunk=8, delay=0.02), llm="openai")
    lines: list[str] = []
    try:
        with live.client() as c, c.stream("POST", "/v1/chat/completions", json={
                "model": "footnote", "stream": True, "messages": [{"role": "user", "content": Q}]}) as r:
            for line in r.iter_lines():
                lines.append(line)
                if '"content": "' in line and not AppStatus.should_exit:
                    AppStatus.should_exit = True  # what uvicorn's SIGTERM handler sets
    finally:
        AppStatus.should_exit = False  # process-wide: other servers in this test run go on
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert json.loads(data[-1])["error"]["code"] == "shutting_down", data[-3:]
    assert "[DONE]" not in data
