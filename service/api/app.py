"""The HTTP service: `create_app()` builds the FastAPI application.

    uvicorn --factory service.api.app:create_app      # or: footnote serve

Layers, outermost first: CORS (when FOOTNOTE_CORS_ORIGINS is set) -> a catch-all that logs
unexpected errors and answers a clean 500 -> bearer-key auth -> body-size limit -> routes.
Routes are thin: they validate, take a generation slot, and hand the work to `AnswerService`
off the event loop (service/api/runtime.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from service.answer.service import AnswerService
from service.api import routes_ask, routes_chat, routes_documents, routes_health, routes_page
from service.api.auth import BearerAuthMiddleware
from service.api.errors import CatchAllMiddleware, install_error_handlers
from service.api.limits import BodyLimitMiddleware
from service.api.runtime import Runtime
from service.api.schemas import ChatCompletionChunk, DeltaEvent
from service.container import Container
from service.offline import quiet_library_progress
from service.settings import Settings

DESCRIPTION = """Answers questions over a folder of documents; every claim in an answer cites the exact
source sentence (document, sentence number, character offsets, quoted text).

* `POST /v1/ask` — the answer object, or Server-Sent Events with `"stream": true`.
* `POST /v1/chat/completions`, `GET /v1/models` — OpenAI-compatible: point any OpenAI client
  or chat frontend at `<this server>/v1`. Citations arrive as `url_citation` annotations, Open
  WebUI sources and `footnote.citations`; `footnote-markdown` appends a Sources list.
* `GET /v1/documents[/{id}]` — the documents and their sentences, to show a cited sentence.
* `GET /` — a web page for asking, with the cited sentences shown in their documents.

Errors are `{"error": {"message", "type", "code", "param"}}`. With `FOOTNOTE_API_KEYS` set,
every route but `/healthz` and the page (`/`, `/static/*`) needs `Authorization: Bearer <key>`."""


def create_app(settings: Settings | None = None, answer_service: AnswerService | None = None,
               container: Container | None = None) -> FastAPI:
    """The application. Without `answer_service` it opens the index (ingesting first if the
    corpus changed) in the background at startup; `/readyz` says when it can answer. Without
    `settings` (uvicorn --factory) it reads them from the environment: an entry point."""
    if settings is None:
        quiet_library_progress()
        settings = Settings()
    runtime = Runtime(settings, answer_service, container)
    middleware = []
    origins = settings.cors_origin_list
    if origins:
        middleware.append(Middleware(
            CORSMiddleware, allow_origins=["*"] if "*" in origins else origins,
            allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Authorization", "Content-Type", "Accept"],
            expose_headers=["Retry-After", "WWW-Authenticate"], max_age=600,
        ))
    middleware += [
        Middleware(CatchAllMiddleware),
        Middleware(BearerAuthMiddleware, keys=settings.api_key_list),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
    ]
    app = FastAPI(title="Footnote", version=_version(), description=DESCRIPTION,
                  lifespan=runtime.lifespan, middleware=middleware)
    app.state.runtime = runtime
    install_error_handlers(app)
    for module in (routes_ask, routes_chat, routes_documents, routes_health, routes_page):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """FastAPI's schema, plus what it cannot know: the configured question length limit and
    the shapes of streamed events."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["AskRequest"]["properties"]["question"]["maxLength"] = settings.max_question_chars
    for option in components["AskRequest"]["properties"]["backend"].get("anyOf", []):
        if "enum" in option:  # only what the operator enabled (FOOTNOTE_ALLOWED_BACKENDS)
            option["enum"] = settings.allowed_backend_list
    _, extra = models_json_schema([(ChatCompletionChunk, "validation"), (DeltaEvent, "validation")],
                                  ref_template="#/components/schemas/{model}")
    for name, definition in extra.get("$defs", {}).items():
        components.setdefault(name, definition)
    # FastAPI documents its own 422 body; ours is the OpenAI-shaped error like every other.
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for operations in schema["paths"].values():
        for operation in operations.values():
            invalid = operation.get("responses", {}).get("422")
            if invalid:
                invalid["content"] = {"application/json": {"schema": error_ref}}
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("footnote")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"
