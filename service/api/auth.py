"""Bearer-key authentication: with FOOTNOTE_API_KEYS set, every route but /healthz and the web
page (`/`, `/documents/...` and its `/static/` files; the page asks for the key itself) needs
`Authorization: Bearer <key>`.

Enforced by a middleware, so it covers every path (the docs, the schema, unknown routes) and
answers before the body is read. Keys are compared in constant time, and every key is compared,
so neither the length of a match nor which key matched shows in the timing.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from fastapi.security import HTTPBearer
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import error_body

EXEMPT = frozenset({"/healthz", "/"})
EXEMPT_PREFIXES = ("/static/", "/documents/")  # the page's files, the page on a sentence (routes_page.py)

# Declares the scheme in the OpenAPI schema (the "Authorize" button on /docs); the middleware
# below is what enforces it.
bearer_scheme = HTTPBearer(auto_error=False, description="one of FOOTNOTE_API_KEYS, when set")


def key_matches(token: str, keys: Iterable[str]) -> bool:
    candidate = token.encode("utf-8")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode("utf-8"))
    return matched


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class BearerAuthMiddleware:
    def __init__(self, app: ASGIApp, keys: list[str], exempt: frozenset[str] = EXEMPT) -> None:
        self.app = app
        self.keys = list(keys)
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.keys or path in self.exempt or path.startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        if token is not None and key_matches(token, self.keys):
            await self.app(scope, receive, send)
            return
        if token is None:
            message = "missing API key: send the header `Authorization: Bearer <key>`"
            challenge, code = 'Bearer realm="footnote"', "missing_api_key"
        else:
            message = "invalid API key"
            challenge, code = 'Bearer realm="footnote", error="invalid_token"', "invalid_api_key"
        response = JSONResponse(error_body(401, message, code), status_code=401,
                                headers={"WWW-Authenticate": challenge})
        await response(scope, receive, send)
