"""Bearer keys (FOOTNOTE_API_KEYS) and CORS."""

from __future__ import annotations

import openai
import pytest

from service.api.auth import key_matches
from tests.api.support import Live, LiveServer, Q, build_app

KEYS = "key-one, key-two"


@pytest.fixture(scope="module")
def guarded(seed_retriever, api_settings):
    app = build_app(seed_retriever, api_settings.model_copy(update={"api_keys": KEYS}))
    live = LiveServer(app)
    yield Live(live.start(), app, None)
    live.stop()


@pytest.mark.parametrize("path, method", [
    ("/v1/ask", "POST"), ("/v1/chat/completions", "POST"), ("/v1/models", "GET"),
    ("/v1/documents", "GET"), ("/readyz", "GET"), ("/openapi.json", "GET"), ("/v1/unknown", "GET"),
])
def test_every_route_but_healthz_needs_a_key(guarded, path, method):
    with guarded.client() as c:
        missing = c.request(method, path, json={"question": Q})
        wrong = c.request(method, path, json={"question": Q}, headers={"Authorization": "Bearer key-three"})
    for r, code in ((missing, "missing_api_key"), (wrong, "invalid_api_key")):
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.json()["error"]["code"] == code
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]


def test_a_good_key_passes_and_healthz_needs_none(guarded):
    with guarded.client() as c:
        assert c.get("/healthz").status_code == 200
        for key in ("key-one", "key-two"):
            r = c.post("/v1/ask", json={"question": Q}, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200 and r.json()["answerable"]
        assert c.get("/readyz", headers={"Authorization": "bearer key-two"}).status_code == 200
        assert c.get("/readyz", headers={"Authorization": "Basic key-one"}).status_code == 401


def test_the_openai_client_sends_its_key(guarded):
    good = openai.OpenAI(base_url=f"{guarded.url}/v1", api_key="key-two", max_retries=0)
    assert good.chat.completions.create(model="footnote", messages=[{"role": "user", "content": Q}]).choices
    bad = openai.OpenAI(base_url=f"{guarded.url}/v1", api_key="key-1", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="invalid API key"):
        bad.models.list()


def test_key_matching():
    assert key_matches("abc", ["x", "abc"]) and not key_matches("ab", ["abc"]) and not key_matches("abc", [])
    assert not key_matches("é", ["e"])


def test_cors_preflight_and_headers_for_configured_origins(serve):
    live = serve(cors_origins="https://chat.example", api_keys="k")
    with live.client() as c:
        preflight = c.options("/v1/chat/completions", headers={
            "Origin": "https://chat.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://chat.example"
        denied = c.get("/v1/models", headers={"Origin": "https://chat.example"})  # no key: 401, still readable
        assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == "https://chat.example"
        other = c.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_no_cors_headers_unless_configured(client):
    r = client.get("/healthz", headers={"Origin": "https://chat.example"})
    assert "access-control-allow-origin" not in r.headers
