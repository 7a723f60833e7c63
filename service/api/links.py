"""Addresses of cited sentences on Footnote's own web page.

`/documents/{document id}?s={sentence}` serves the page (routes_page.py), which opens that
document with the sentence highlighted. Chat frontends need absolute http(s) links, so the base
is FOOTNOTE_PUBLIC_URL when set (behind a proxy, the address browsers use), else the address
the request came in on.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from starlette.requests import Request

from service.settings import Settings

PAGE_PREFIX = "/documents/"


def sentence_path(document: str, sentence: int) -> str:
    """The page's path for one sentence; a document id may hold folders (`a/b.txt`)."""
    return f"{PAGE_PREFIX}{quote(document, safe='/')}?s={sentence}"


@dataclass(frozen=True)
class SentenceLinks:
    base: str  # no trailing slash

    @classmethod
    def for_request(cls, request: Request, settings: Settings) -> SentenceLinks:
        # request.base_url carries the ASGI root_path, so a mount point is kept.
        return cls(settings.public_base or str(request.base_url).rstrip("/"))

    def url(self, document: str, sentence: int) -> str:
        return self.base + sentence_path(document, sentence)
