"""Links to cited sentences (service/api/links.py) and FOOTNOTE_PUBLIC_URL."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from service.api.links import SentenceLinks, sentence_path
from service.settings import Settings


def request(host: str = "10.0.0.5:8000", root_path: str = "") -> Request:
    return Request({"type": "http", "scheme": "http", "method": "GET", "path": "/v1/chat/completions",
                    "root_path": root_path, "query_string": b"", "server": ("10.0.0.5", 8000),
                    "headers": [(b"host", host.encode())]})


def test_paths_keep_folders_and_quote_everything_else():
    assert sentence_path("a.txt", 3) == "/documents/a.txt?s=3"
    assert sentence_path("sub/x y#?%.txt", 12) == "/documents/sub/x%20y%23%3F%25.txt?s=12"
    assert sentence_path("é.md", 1) == "/documents/%C3%A9.md?s=1"


def test_links_use_the_request_address_unless_a_public_url_is_set():
    plain = SentenceLinks.for_request(request(), Settings())
    assert plain.url("a.txt", 2) == "http://10.0.0.5:8000/documents/a.txt?s=2"
    mounted = SentenceLinks.for_request(request(root_path="/footnote"), Settings())
    assert mounted.url("a.txt", 2) == "http://10.0.0.5:8000/footnote/documents/a.txt?s=2"
    public = SentenceLinks.for_request(request(), Settings(public_url="https://docs.example.org/fn/"))
    assert public.url("a.txt", 2) == "https://docs.example.org/fn/documents/a.txt?s=2"


@pytest.mark.parametrize("value", ["ftp://example.org", "example.org", "https://", "https://a b.org",
                                   "https://example.org/?x=1"])
def test_a_public_url_must_be_an_http_address(value):
    with pytest.raises(ValidationError, match="FOOTNOTE_PUBLIC_URL must be an http"):
        Settings(public_url=value)


def test_the_public_url_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("FOOTNOTE_PUBLIC_URL", " https://footnote.example.org/ ")
    assert Settings().public_base == "https://footnote.example.org"
    assert Settings(public_url="").public_base is None
