"""GET /v1/documents, /v1/documents/{id}, /healthz and /readyz."""

from __future__ import annotations

import time

import httpx
import pytest

from service.api.app import create_app
from service.settings import Settings
from tests.api.support import LiveServer


@pytest.fixture(scope="module")
def doc_id(seed_retriever) -> str:
    return sorted(seed_retriever.index.manifest)[0]


def test_documents_list_ids_sizes_and_sentence_counts(client, seed_retriever, doc_id):
    body = client.get("/v1/documents").json()
    assert body["object"] == "list" and len(body["data"]) == len(seed_retriever.index.manifest)
    doc = {d["id"]: d for d in body["data"]}[doc_id]
    entry = seed_retriever.index.manifest[doc_id]
    assert doc["bytes"] == entry.size and doc["sentence_count"] == entry.count > 0
    assert doc["characters"] == len(seed_retriever.index.texts[doc_id])


def test_a_document_has_its_text_and_sentence_offsets(client, doc_id):
    doc = client.get(f"/v1/documents/{doc_id}").json()
    assert len(doc["sentences"]) == doc["sentence_count"]
    for number, s in enumerate(doc["sentences"], start=1):
        assert s["sentence"] == number and doc["text"][s["start"] : s["end"]] == s["text"]


def test_an_unknown_document_is_404(client):
    r = client.get("/v1/documents/sub/missing.txt")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_document" and "sub/missing.txt" in r.json()["error"]["message"]


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["documents"] >= 1
    assert ready["backend"] == {"name": "extractive", "usable": True, "detail": "no model needed"}


def test_readyz_is_503_with_the_reason_until_the_index_loads(tmp_path):
    # No service given: the app opens the index itself, and this corpus folder does not exist.
    settings = Settings(docs_dir=tmp_path / "no-such-corpus", data_dir=tmp_path / "data", llm="extractive")
    live = LiveServer(create_app(settings))
    url = live.start()
    try:
        with httpx.Client(base_url=url) as c:
            assert c.get("/healthz").status_code == 200
            deadline = time.monotonic() + 20
            while (r := c.get("/readyz")).json()["error"]["message"].endswith("still loading"):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert r.status_code == 503 and r.headers["Retry-After"]
            assert r.json()["error"]["code"] == "not_ready"
            assert "index could not be loaded" in r.json()["error"]["message"]
            ask = c.post("/v1/ask", json={"question": "anything?"})
            assert ask.status_code == 503 and ask.json()["error"]["code"] == "not_ready"
    finally:
        live.stop()


def test_readyz_reports_an_unusable_backend(serve):
    from service.llm.base import LLMError

    def broken(name: str):  # noqa: ANN202
        raise LLMError("model file missing")

    strict = serve(factory=broken, llm="embedded", llm_fallback=False)
    r = strict.client().get("/readyz")
    assert r.status_code == 503 and "model file missing" in r.json()["error"]["message"]

    lenient = serve(factory=broken, llm="embedded")  # falls back to extractive answers
    ready = lenient.client().get("/readyz").json()
    assert ready["backend"]["usable"] is False and "answering extractively" in ready["backend"]["detail"]


def test_head_on_the_page_and_healthz_is_allowed(client):
    for path in ("/", "/healthz"):
        r = client.head(path)
        assert r.status_code == 200 and r.content == b"", path
