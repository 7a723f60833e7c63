"""OpenAI-compatible `POST /v1/chat/completions` and `GET /v1/models`.

The last user message is the question; earlier turns only serve to make a follow-up standalone
(`service.answer.followup`). The reply's content carries the [n] markers, and the citations
travel as an extra top-level `citations` field (clients ignore unknown fields): on the
completion, or on the chunk with `finish_reason` when streaming. `footnote` tells which
question was answered and how.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from fastapi import APIRouter, Depends, Request
from sse_starlette import ServerSentEvent

from service.answer import followup
from service.answer.models import Answer
from service.answer.service import BACKENDS
from service.api.auth import bearer_scheme
from service.api.errors import ApiError, from_answer_error
from service.api.routes_ask import ERRORS
from service.api.runtime import AnswerRun, Runtime, runtime_of
from service.api.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    ChatUsage,
    ErrorResponse,
    FootnoteInfo,
    ModelCard,
    ModelList,
    sse_event,
)
from service.api.streaming import error_data, sse_response
from service.llm.base import ChatMessage, LLMError

router = APIRouter(tags=["openai"], dependencies=[Depends(bearer_scheme)])

DEFAULT_MODEL = "footnote"
PREFIX = "footnote-"


def model_ids(runtime: Runtime) -> list[str]:
    """`footnote` answers with the default backend; `footnote-<backend>` with that one."""
    ids = [DEFAULT_MODEL, f"{PREFIX}extractive"]
    default = runtime.settings.resolved_backend
    if default != "extractive":
        ids.append(PREFIX + default)
    return ids


def backend_for(model: str, runtime: Runtime) -> str | None:
    if model == DEFAULT_MODEL:
        return None
    if model.startswith(PREFIX) and model[len(PREFIX):] in BACKENDS:
        return model[len(PREFIX):]
    raise ApiError(404, f"The model {model!r} does not exist; use one of: {', '.join(model_ids(runtime))}",
                   code="model_not_found", param="model")


@router.get("/v1/models", response_model=ModelList, summary="The models this server offers",
            responses={401: {"model": ErrorResponse}})
async def list_models(request: Request) -> ModelList:
    runtime = runtime_of(request)
    return ModelList(data=[ModelCard(id=i, created=runtime.started) for i in model_ids(runtime)])


@router.get("/v1/models/{model_id}", response_model=ModelCard, summary="One model",
            responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}})
async def get_model(model_id: str, request: Request) -> ModelCard:
    runtime = runtime_of(request)
    backend_for(model_id, runtime)
    return ModelCard(id=model_id, created=runtime.started)


@dataclass
class _Reply:
    """What every chunk or completion of one reply shares."""

    model: str
    question: str
    warnings: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))

    def info(self, answer: Answer) -> FootnoteInfo:
        return FootnoteInfo(question=self.question, answerable=answer.answerable, backend=answer.backend,
                            model=answer.model, warnings=[*self.warnings, *answer.warnings])

    def completion(self, answer: Answer) -> ChatCompletion:
        return ChatCompletion(
            id=self.id, created=self.created, model=self.model,
            choices=[ChatChoice(message=AssistantMessage(content=answer.answer))],
            usage=_usage(answer), citations=answer.citations, footnote=self.info(answer),
        )

    def chunk(self, delta: dict, finish_reason: str | None = None, **extra) -> ServerSentEvent:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
                **extra}
        return ServerSentEvent(json.dumps(body, ensure_ascii=False))


def _usage(answer: Answer) -> ChatUsage:
    u = answer.usage
    return ChatUsage(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
                     total_tokens=u.prompt_tokens + u.completion_tokens)


CHAT_STREAM = {"anyOf": [
    sse_event("ChatCompletionChunk"), sse_event("ErrorResponse"),
    {"type": "object", "properties": {"data": {"const": "[DONE]"}}, "required": ["data"]},
]}

STREAM_DOC = (
    "OpenAI's Chat Completions. With `\"stream\": true`: `data:` lines of `chat.completion.chunk` "
    "objects (schema `ChatCompletionChunk`), then `data: [DONE]`. The chunk with `finish_reason` "
    "carries `citations` and `footnote`; an error after the stream started arrives as "
    "`data: {\"error\": {...}}`. Footnote reads `top_k` and `documents` too (openai client: `extra_body`)."
)


@router.post(
    "/v1/chat/completions", response_model=ChatCompletion, summary="Chat (OpenAI-compatible), cited",
    description=STREAM_DOC,
    responses={200: {"content": {"text/event-stream": {"schema": CHAT_STREAM}}},
        **ERRORS, 404: {"model": ErrorResponse, "description": "an unknown model or document id"}},
)
async def chat_completions(body: ChatCompletionRequest, request: Request):
    arrived = time.monotonic()
    runtime = runtime_of(request)
    backend = backend_for(body.model, runtime)
    conversation: list[ChatMessage] = [{"role": m.role, "content": m.text()} for m in body.messages]
    users = [m for m in conversation if m["role"] == "user"]
    if not users:
        raise ApiError(422, "messages: the conversation has no user message", param="messages")
    runtime.check_question(users[-1]["content"], param="messages")
    documents = runtime.check_documents(body.documents)
    slot = await runtime.admit(backend)
    try:
        rewrite = await anyio.to_thread.run_sync(_standalone, runtime, conversation, backend)
        run = runtime.start(slot, rewrite.question, top_k=body.top_k, documents=documents,
                            backend=backend, arrived=arrived)
    except BaseException:
        slot.release()
        raise
    reply = _Reply(body.model, rewrite.question, [rewrite.warning] if rewrite.warning else [])
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse_response(chat_chunks(run, reply, include_usage), run)
    try:
        answer = await run.result(request)
    except Exception as exc:
        error = from_answer_error(exc)
        if error is None:
            raise
        raise error from exc
    return reply.completion(answer)


def _standalone(runtime: Runtime, conversation: list[ChatMessage], backend: str | None) -> followup.Rewrite:
    """Rewrite a follow-up with the answering model; heuristically for the extractive backend."""
    name = backend or runtime.settings.resolved_backend
    llm = None
    if name != "extractive" and sum(m["role"] == "user" for m in conversation) > 1:
        try:
            llm = runtime.require_service().backend(name)
        except LLMError as exc:
            rewrite = followup.standalone_question(conversation, None,
                                                   max_chars=runtime.settings.max_question_chars)
            return followup.Rewrite(rewrite.question, rewrite.method,
                                    f"the {name} backend could not rewrite the follow-up ({exc})")
    return followup.standalone_question(conversation, llm, max_chars=runtime.settings.max_question_chars)


async def chat_chunks(run: AnswerRun, reply: _Reply, include_usage: bool) -> AsyncIterator[ServerSentEvent]:
    try:
        yield reply.chunk({"role": "assistant", "content": ""})
        answer: Answer | None = None
        while (event := await run.next_event()) is not None:
            kind, payload = event
            if kind == "delta":
                yield reply.chunk({"content": payload})
            elif kind == "done":
                answer = payload  # type: ignore[assignment]
        assert answer is not None, "the answer stream ended without an answer"
        yield reply.chunk({}, "stop", citations=[c.model_dump() for c in answer.citations],
                          footnote=reply.info(answer).model_dump())
        if include_usage:
            usage = {"id": reply.id, "object": "chat.completion.chunk", "created": reply.created,
                     "model": reply.model, "choices": [], "usage": _usage(answer).model_dump()}
            yield ServerSentEvent(json.dumps(usage))
        yield ServerSentEvent("[DONE]")
    except Exception as exc:
        yield ServerSentEvent(error_data(exc))
    finally:
        await run.close()
