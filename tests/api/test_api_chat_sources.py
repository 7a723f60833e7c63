"""Chat frontends see Footnote's citations: the chunk and completion shapes Open WebUI, OpenAI's
annotations, the openai client and a strict schema read, against a real server on loopback.

`open_webui_sources` replays what Open WebUI 0.12.4 does with a reply, read from its code:
backend/open_webui/utils/middleware.py (streaming handler: a chunk's top-level `event` is
emitted to the browser; each `choices[0].delta.annotations` `url_citation` is emitted as a
`source` built from its url and title; a non-streamed reply's top-level `sources` is taken as
is), socket/main.py (only `source`/`citation` events whose data has no `type` are stored), and
src/lib/components/chat/Messages/Citations.svelte (sources merged by `metadata.source`, an http
id shown by name only when `metadata.external`; `[n]` opens the n-th merged source).
"""

from __future__ import annotations

import copy
import json
import re

import httpx
import jsonschema_rs
import openai
import pytest

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import FACT, FakeModel, Q, context_lines, parse_sse
from tests.conftest import SEED_DOC_ID

MARKER = re.compile(r"\[(\d+)\]")


def two_cited_sentences(messages) -> str:  # noqa: ANN001
    lines = list(context_lines(messages).items())[:3]
    return " ".join(f"{text.rstrip('.')} [{n}]." for n, text in lines)


# ---- Open WebUI, replayed ----------------------------------------------------------------------


def open_webui_events(chunks: list[dict]) -> list[dict]:
    """The events Open WebUI's streaming handler emits for these chunks (middleware.py)."""
    events = []
    for data in chunks:
        if "event" in data:
            events.append(data["event"])
        choices = data.get("choices", [])
        if not choices:
            continue
        for annotation in choices[0].get("delta", {}).get("annotations") or []:
            if annotation.get("type") == "url_citation" and "url_citation" in annotation:
                cite = annotation["url_citation"]
                url, title = cite.get("url", ""), cite.get("title", cite.get("url", ""))
                events.append({"type": "source", "data": {"source": {"name": title, "url": url},
                                                          "document": [title],
                                                          "metadata": [{"source": url, "name": title}]}})
    return events


def merged_sources(sources: list[dict]) -> list[dict]:
    """Citations.svelte: the sources list the chat shows, in order; `[n]` opens entry n-1."""
    merged: list[dict] = []
    for source in sources:
        for i, document in enumerate(source.get("document") or []):
            metadata = (source.get("metadata") or [])[i]
            key = metadata.get("source") or source.get("source", {}).get("id") or "N/A"
            shown = dict(source.get("source") or {})
            if metadata.get("name"):
                shown["name"] = metadata["name"]
            if key.startswith(("http://", "https://")):
                shown = {**shown, "name": shown["name"] if metadata.get("external") else key, "url": key}
            existing = next((m for m in merged if m["id"] == key), None)
            if existing:
                existing["document"].append(document)
                existing["metadata"].append(metadata)
            else:
                merged.append({"id": key, "source": shown, "document": [document], "metadata": [metadata]})
    return merged


def open_webui_sources(chunks: list[dict]) -> list[dict]:
    events = open_webui_events(chunks)
    assert {e["type"] for e in events} <= {"source"}, "Open WebUI would act on other event types"
    return merged_sources([e["data"] for e in events if e["data"].get("type") is None])


# ---- helpers -----------------------------------------------------------------------------------


def stream_chunks(live, model: str = "footnote", question: str = Q, **headers) -> list[dict]:  # noqa: ANN001
    with live.client() as c:
        r = c.post("/v1/chat/completions", headers=headers,
                   json={"model": model, "stream": True, "messages": [{"role": "user", "content": question}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    data = [d for _, d in parse_sse(r.text)]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def complete(live, model: str = "footnote", question: str = Q, **headers) -> dict:  # noqa: ANN001
    with live.client() as c:
        r = c.post("/v1/chat/completions", headers=headers,
                   json={"model": model, "messages": [{"role": "user", "content": question}]})
    assert r.status_code == 200, r.text
    return r.json()


def content_of(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def final_info(chunks: list[dict]) -> dict:
    return next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])


def assert_sources_match_citations(shown: list[dict], citations: list[dict], content: str) -> None:
    """Each [n] in the content opens the n-th source: the cited sentence, quoted and linked."""
    numbers = {int(n) for n in MARKER.findall(content)}
    assert numbers and numbers == {c["n"] for c in citations} and len(shown) == len(citations)
    for c in citations:
        entry = shown[c["n"] - 1]
        assert entry["document"][0] == c["text"]
        assert entry["source"]["name"] == f"000_f586….txt · sentence {c['sentence']}"
        assert entry["source"]["url"] == entry["id"] == c["url"]


@pytest.fixture()
def two(serve):
    """A server whose generative answers cite three context sentences, one claim each."""
    return serve(FakeModel(two_cited_sentences), llm="openai")


# ---- streamed ----------------------------------------------------------------------------------


def test_a_streamed_reply_sends_each_source_as_an_open_webui_event_before_its_marker(two):
    chunks = stream_chunks(two)
    content = content_of(chunks)
    citations = final_info(chunks)["footnote"]["citations"]
    assert len(citations) == 3

    sent: set[int] = set()
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk" and chunk["id"] == chunks[0]["id"]
        if "event" in chunk:
            # still a valid chunk: one choice with an empty delta
            assert chunk["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": None}]
            data = chunk["event"]["data"]
            assert chunk["event"]["type"] == "source" and set(data) == {"source", "document", "metadata"}
            assert len(data["document"]) == len(data["metadata"]) == 1
            sent.add(data["metadata"][0]["n"])
        elif chunk["choices"]:
            piece = chunk["choices"][0]["delta"].get("content") or ""
            used = {int(n) for n in MARKER.findall(piece)}
            assert used <= sent, f"{piece!r} uses a marker before its source was sent"
    assert sent == {1, 2, 3}
    assert_sources_match_citations(open_webui_sources(chunks), citations, content)


def test_streamed_annotations_index_the_whole_content(two):
    chunks = stream_chunks(two)
    content = content_of(chunks)
    citations = {c["n"]: c for c in final_info(chunks)["footnote"]["citations"]}
    annotations = [a for c in chunks if c["choices"] for a in c["choices"][0]["delta"].get("annotations") or []]
    assert len(annotations) == len(MARKER.findall(content)) == 3
    for a in annotations:
        span = a["url_citation"]
        claim = content[span["start_index"]:span["end_index"]]
        [n] = [int(x) for x in MARKER.findall(claim)]
        assert claim.endswith((f"[{n}]", f"[{n}].")) and claim[0].isupper()
        assert span["url"] == citations[n]["url"] and span["title"].endswith(f"sentence {citations[n]['sentence']}")
    # the same spans as the non-streamed message
    assert annotations == complete(two)["choices"][0]["message"]["annotations"]


# ---- non-streamed ------------------------------------------------------------------------------


def test_a_completion_carries_sources_annotations_and_the_full_citations(two):
    body = complete(two)
    message = body["choices"][0]["message"]
    citations = body["footnote"]["citations"]
    assert_sources_match_citations(merged_sources(body["sources"]), citations, message["content"])
    spans = [(a["url_citation"]["start_index"], a["url_citation"]["end_index"]) for a in message["annotations"]]
    claims = [message["content"][s:e] for s, e in spans]
    assert " ".join(claims) == message["content"]  # one claim per marker here, nothing left out
    # the deprecated top-level field still holds the same citations, without links
    assert body["citations"] == [{k: v for k, v in c.items() if k != "url"} for c in citations]


def test_each_link_opens_footnotes_page_and_the_documents_sentence_is_the_quote(two):
    body = complete(two)
    with two.client() as c:
        for citation in body["footnote"]["citations"]:
            url = httpx.URL(citation["url"])
            assert url.path == f"/documents/{SEED_DOC_ID}" and url.params["s"] == str(citation["sentence"])
            assert str(url).startswith(two.url)  # the address the request came in on
            page = c.get(str(url))
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            document = c.get(f"/v1/documents/{SEED_DOC_ID}").json()
            assert document["sentences"][citation["sentence"] - 1]["text"] == citation["text"]


def test_a_public_url_and_a_proxy_mount_point_shape_the_links(serve):
    live = serve(public_url="https://footnote.example.org/docs/")
    streamed = final_info(stream_chunks(live))["footnote"]["citations"]
    for citations in (complete(live)["footnote"]["citations"], streamed):
        assert citations[0]["url"] == f"https://footnote.example.org/docs/documents/{SEED_DOC_ID}?s=1"


def test_a_refusal_has_no_sources_or_annotations(server):
    body = complete(server, question="What is the boiling point of water?")
    assert body["footnote"]["answerable"] is False
    assert body["sources"] == [] and body["choices"][0]["message"]["annotations"] == []
    chunks = stream_chunks(server, question="What is the boiling point of water?")
    assert not any("event" in c for c in chunks) and open_webui_sources(chunks) == []


# ---- the Markdown fallback ---------------------------------------------------------------------


def test_the_markdown_model_ends_its_answer_with_a_numbered_sources_list(two):
    body = complete(two, model="footnote-markdown")
    content = body["choices"][0]["message"]["content"]
    answer, sources = content.split("\n\n**Sources**\n\n")
    assert answer == complete(two)["choices"][0]["message"]["content"]
    lines = sources.split("\n")
    citations = body["footnote"]["citations"]
    assert len(lines) == len(citations) == 3
    for line, c in zip(lines, citations, strict=True):
        assert line.startswith(f"{c['n']}. [000\\_f586….txt · sentence {c['sentence']}]({c['url']}) “")
        assert line.endswith("”")
    streamed = stream_chunks(two, model="footnote-markdown")
    assert content_of(streamed) == content
    # the annotations still index the answer part
    assert body["choices"][0]["message"]["annotations"] == complete(two)["choices"][0]["message"]["annotations"]


def test_the_markdown_model_is_listed_and_takes_any_model_as_a_base(server):
    with server.client() as c:
        ids = [m["id"] for m in c.get("/v1/models").json()["data"]]
        assert "footnote-markdown" in ids
        assert c.get("/v1/models/footnote-extractive-markdown").status_code == 200
        assert c.get("/v1/models/footnote-bogus-markdown").status_code == 404
    body = complete(server, model="footnote-extractive-markdown")
    assert body["footnote"]["backend"] == "extractive" and "**Sources**" in body["choices"][0]["message"]["content"]


# ---- the openai client and a strict schema -----------------------------------------------------


def strict(schema: dict) -> dict:
    """The schema with no undeclared field allowed anywhere."""
    schema = copy.deepcopy(schema)

    def walk(node):  # noqa: ANN001, ANN202
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@pytest.fixture(scope="module")
def validator():
    spec = strict(create_app(Settings(llm="extractive")).openapi())
    components = spec["components"]["schemas"]

    assert "ChatSource" in components and "UrlCitation" in components
    validators = {name: jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": spec["components"]})
        for name in ("ChatCompletion", "ChatCompletionChunk")}
    return lambda component, instance: validators[component].validate(instance)


@pytest.mark.parametrize("model", ["footnote", "footnote-markdown"])
def test_every_chunk_and_completion_fits_the_strict_schema(two, validator, model):
    validator("ChatCompletion", complete(two, model=model))
    with two.client() as c:
        r = c.post("/v1/chat/completions", json={
            "model": model, "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": Q}]})
    chunks = [json.loads(d) for _, d in parse_sse(r.text) if d != "[DONE]"]
    assert any("event" in c for c in chunks) and chunks[-1]["usage"]
    for chunk in chunks:
        validator("ChatCompletionChunk", chunk)


def test_the_openai_client_parses_annotations_and_every_chunk(two):
    client = openai.OpenAI(base_url=f"{two.url}/v1", api_key="unused", max_retries=0, timeout=30)
    completion = client.chat.completions.create(model="footnote", messages=[{"role": "user", "content": Q}])
    message = completion.choices[0].message
    assert len(message.annotations) == 3
    first = message.annotations[0]
    assert first.type == "url_citation" and first.url_citation.url.startswith(f"{two.url}/documents/")
    assert message.content[first.url_citation.start_index:first.url_citation.end_index].endswith("[1].")
    extra = completion.model_extra
    assert extra["sources"][0]["document"] == [extra["footnote"]["citations"][0]["text"]]

    for model in ("footnote", "footnote-markdown"):
        chunks = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": Q}],
                                                     stream=True))
        events = [c.model_extra["event"] for c in chunks if (c.model_extra or {}).get("event")]
        assert [e["data"]["metadata"][0]["n"] for e in events] == [1, 2, 3]
        assert all(c.choices[0].delta.content is None for c in chunks if (c.model_extra or {}).get("event"))
        annotated = [c for c in chunks if c.choices and (c.choices[0].delta.model_extra or {}).get("annotations")]
        assert len(annotated) == 3


def test_the_extractive_answer_to_the_seed_question_is_shown_as_one_source(server):
    chunks = stream_chunks(server)
    [source] = open_webui_sources(chunks)
    assert FACT in source["document"][0] and source["source"]["name"] == "000_f586….txt · sentence 1"
    # streamed: Open WebUI also reads the annotation, and merges it into the same source
    assert source["document"][1] == source["source"]["name"]
    [shown] = merged_sources(complete(server)["sources"])
    assert shown["document"] == [source["document"][0]] and shown["id"] == source["id"]
