"""Every error as JSON in OpenAI's shape, `{"error": {"message", "type", "code", "param"}}`.

Routes raise `ApiError`; every `FootnoteError` is translated by `from_answer_error`;
framework errors (unknown route, wrong method, invalid body) by the handlers installed here.
Anything unexpected is logged with its trace and answered with a plain 500 message: a client
never sees a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.answer.service import BackendNotAllowed, InvalidQuestion
from service.api.schemas import ErrorResponse
from service.errors import FootnoteError
from service.index.hybrid import UnknownDocuments
from service.index.stores import StoreUnavailable
from service.llm.base import LLMBusy, LLMCrashed, LLMError, LLMTimeout
from service.llm.registry import UnknownBackend

log = logging.getLogger("footnote.api")

TYPES = {
    400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
    405: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
    429: "rate_limit_error",
}
CODES = {400: "invalid_request", 401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed",
         413: "request_too_large", 422: "invalid_request", 429: "queue_full", 500: "internal_error",
         502: "backend_failed", 503: "unavailable", 504: "timeout"}
INTERNAL_MESSAGE = "Internal error: the server failed to handle this request; the details are in its log."


class ApiError(Exception):
    """An error with its HTTP status, answered as OpenAI-shaped JSON."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status)
        self.param = param
        self.headers = dict(headers or {})

    @property
    def body(self) -> dict:
        return error_body(self.status, self.message, self.code, self.param)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


class RequestTimeout(FootnoteError):
    """The request ran past FOOTNOTE_REQUEST_TIMEOUT_S."""


class ServerStopping(FootnoteError):
    """The server is shutting down (SIGTERM) while an answer streams."""


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict:
    detail = {"message": message, "type": TYPES.get(status, "server_error"),
              "code": code or CODES.get(status), "param": param}
    return ErrorResponse.model_validate({"error": detail}).model_dump()


def from_answer_error(exc: BaseException) -> ApiError | None:
    """The HTTP error for a `FootnoteError` (or an `ApiError` as it is); None if it is a bug."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, UnknownDocuments):
        return ApiError(404, str(exc), code="unknown_document", param="documents")
    if isinstance(exc, StoreUnavailable):  # the shared index's database restarts or is down
        return ApiError(503, str(exc), code="store_unavailable", headers={"Retry-After": "2"})
    if isinstance(exc, LLMCrashed):
        return ApiError(503, str(exc), code="model_restarting", headers={"Retry-After": "5"})
    if isinstance(exc, LLMBusy):
        return ApiError(503, str(exc), code="busy", headers={"Retry-After": "5"})
    if isinstance(exc, (LLMTimeout, RequestTimeout)):
        return ApiError(504, str(exc) or "the answer took too long", code="timeout")
    if isinstance(exc, LLMError):
        return ApiError(502, f"the generative backend failed: {exc}", code="backend_failed")
    if isinstance(exc, BackendNotAllowed):
        return ApiError(400, str(exc), code="backend_not_allowed", param="backend")
    if isinstance(exc, ServerStopping):
        return ApiError(503, str(exc), code="shutting_down", headers={"Retry-After": "5"})
    if isinstance(exc, UnknownBackend):
        return ApiError(400, str(exc), code="unknown_backend", param="backend")
    if isinstance(exc, InvalidQuestion):
        return ApiError(422, f"question: {exc}", param="question")
    if isinstance(exc, FootnoteError):  # the index or corpus on the server's side
        return ApiError(503, str(exc), code="unavailable", headers={"Retry-After": "5"})
    return None


# ---- handlers --------------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404 and exc.detail == "Not Found":
        message = f"no such route: {request.method} {request.url.path} (see /docs)"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}" + (f"; use {allowed}" if allowed else "")
    else:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return JSONResponse(error_body(status, message), status_code=status, headers=exc.headers)


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def validation_message(errors: list[dict], content_type: str = "") -> tuple[int, str, str | None]:
    """(status, message, param) for pydantic/FastAPI validation errors."""
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "")
        return 400, f"the request body is not valid JSON ({reason})".replace(" ()", ""), None
    messages = []
    for e in errors[:3]:
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field"
        field = _field(tuple(e.get("loc", ())))
        if field == "body" and e.get("type") in ("model_attributes_type", "dict_type", "missing"):
            msg = "send a JSON object" + ("" if "json" in content_type else " with Content-Type: application/json")
        messages.append(f"{field}: {msg}")
    if len(errors) > 3:
        messages.append(f"and {len(errors) - 3} more")
    first = errors[0] if errors else {}
    return 422, "; ".join(messages) or "invalid request", _field(tuple(first.get("loc", ()))) if first else None


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    status, message, param = validation_message(list(exc.errors()), request.headers.get("content-type", ""))
    return JSONResponse(error_body(status, message, param=param), status_code=status)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Reached only for errors outside CatchAllMiddleware (e.g. in CORS); Starlette logs the trace.
    return JSONResponse(error_body(500, INTERNAL_MESSAGE), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)


class CatchAllMiddleware:
    """Log any unhandled exception with its trace; answer a clean 500 if nothing was sent yet."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except StoreUnavailable as exc:  # wherever the database went away: a 503, never a 500
            log.warning("%s %s: %s", scope.get("method"), scope.get("path"), exc)
            if not started:
                await from_answer_error(exc).response()(scope, receive, send)  # type: ignore[union-attr]
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                return  # the response is under way; the client sees it cut short
            await JSONResponse(error_body(500, INTERNAL_MESSAGE), status_code=500)(scope, receive, send)
