"""OpenAI-compatible `POST /v1/chat/completions` and `GET /v1/models`.

The last user message is the question; earlier turns only serve to make a follow-up standalone
(`service.answer.followup`). The reply's content carries the [n] markers; the citations travel
in the shapes chat frontends read (chat_sources.py): Open WebUI sources, OpenAI url_citation
annotations, a Markdown Sources list for `-markdown` models. `footnote` tells which question
was answered and how, with the full citation objects; the top-level `citations` is deprecated.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import APIRouter, Depends, Request
from sse_starlette import ServerSentEvent

from service.answer.events import Cited, Delta, Done
from service.answer.models import Answer
from service.api.auth import bearer_scheme
from service.api.chat_sources import ChatCitations
from service.api.errors import ApiError
from service.api.links import SentenceLinks
from service.api.routes_ask import ERRORS
from service.api.runtime import AnswerRun, Runtime, runtime_of
from service.api.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatUsage,
    ChunkChoice,
    ChunkDelta,
    ErrorResponse,
    FootnoteInfo,
    ModelCard,
    ModelList,
    SourceEvent,
    sse_event,
)
from service.api.streaming import error_data, sse_response
from service.llm.base import ChatMessage

router = APIRouter(tags=["openai"], dependencies=[Depends(bearer_scheme)])

DEFAULT_MODEL = "footnote"
PREFIX = "footnote-"
MARKDOWN = "-markdown"  # any model id + this: the content ends with a Markdown Sources list


def model_ids(runtime: Runtime) -> list[str]:
    """`footnote` answers with the default backend; `footnote-<backend>` with each one the
    operator enabled (FOOTNOTE_ALLOWED_BACKENDS), and no other; `footnote-markdown` with the
    default backend, for frontends that show no sources."""
    listed = runtime.settings.allowed_backend_list
    return [DEFAULT_MODEL, DEFAULT_MODEL + MARKDOWN, *(PREFIX + name for name in listed)]


def backend_for(model: str, runtime: Runtime) -> str | None:
    base = model.removesuffix(MARKDOWN)
    if base == DEFAULT_MODEL:
        return None
    if base.startswith(PREFIX):
        try:
            return runtime.choose_backend(base[len(PREFIX):])
        except ApiError:
            pass  # unknown or not enabled: to an OpenAI client, a model that does not exist
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
    cites: ChatCitations
    warnings: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))

    def info(self, answer: Answer) -> FootnoteInfo:
        return FootnoteInfo(question=self.question, answerable=answer.answerable, backend=answer.backend,
                            model=answer.model, warnings=[*self.warnings, *answer.warnings],
                            citations=self.cites.linked(answer.citations))

    def completion(self, answer: Answer) -> ChatCompletion:
        message = AssistantMessage(content=self.cites.content(answer),
                                   annotations=self.cites.message_annotations(answer))
        return ChatCompletion(
            id=self.id, created=self.created, model=self.model, choices=[ChatChoice(message=message)],
            usage=_usage(answer), sources=self.cites.sources(answer), citations=answer.citations,
            footnote=self.info(answer),
        )

    def chunk(self, delta: ChunkDelta | None, answer: Answer | None = None,
              usage: ChatUsage | None = None, event: SourceEvent | None = None) -> ServerSentEvent:
        """One `chat.completion.chunk`: a delta (with an empty one, `event`: an Open WebUI
        source); the final one (`answer` given) with the finish reason, citations and footnote;
        or, `delta` None, the usage chunk with no choices."""
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason="stop" if answer else None)]
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage, event=event,
            citations=answer.citations if answer else None, footnote=self.info(answer) if answer else None)
        # json.dumps, as before: the same bytes on the wire (", " separators, UTF-8 as is).
        return ServerSentEvent(json.dumps(chunk.model_dump(mode="json"), ensure_ascii=False))


def _usage(answer: Answer) -> ChatUsage:
    u = answer.usage
    return ChatUsage(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
                     total_tokens=u.prompt_tokens + u.completion_tokens)


CHAT_STREAM = {"anyOf": [
    sse_event("ChatCompletionChunk"), sse_event("ErrorResponse"),
    {"type": "object", "properties": {"data": {"const": "[DONE]"}}, "required": ["data"]},
]}

STREAM_DOC = (
    "OpenAI's Chat Completions, cited: `message.annotations` holds a `url_citation` per [n] marker "
    "(linking the sentence on Footnote's page), `sources` the same citations as Open WebUI reads "
    "them, `footnote.citations` Footnote's full citation objects (the top-level `citations` is "
    "deprecated). Model ids ending in `-markdown` append a numbered Sources list to the content. "
    "With `\"stream\": true`: `data:` lines of `chat.completion.chunk` objects (schema "
    "`ChatCompletionChunk`), then `data: [DONE]`; before the content that first uses an [n], a chunk "
    "with an empty delta carries its source as `event` (`{\"type\": \"source\", \"data\": ...}`), and "
    "content chunks carry `delta.annotations`. The chunk with `finish_reason` carries `footnote`; "
    "an error after the stream started arrives as `data: {\"error\": {...}}`. Footnote reads "
    "`top_k` and `documents` too (openai client: `extra_body`)."
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
    run = await runtime.open_run(conversation=conversation, backend=backend, top_k=body.top_k,
                                 documents=runtime.check_documents(body.documents), arrived=arrived)
    cites = ChatCitations(SentenceLinks.for_request(request, runtime.settings),
                          markdown=body.model.endswith(MARKDOWN))
    reply = _Reply(body.model, run.question, cites, run.warnings)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse_response(chat_chunks(run, reply, include_usage), run)
    return reply.completion(await run.result(request))


async def chat_chunks(run: AnswerRun, reply: _Reply, include_usage: bool) -> AsyncIterator[ServerSentEvent]:
    try:
        yield reply.chunk(ChunkDelta(role="assistant", content=""))
        answer: Answer | None = None
        while (event := await run.next_event()) is not None:
            if isinstance(event, Cited):
                yield reply.chunk(ChunkDelta(), event=reply.cites.cited(event.citation))
            elif isinstance(event, Delta):
                yield reply.chunk(ChunkDelta(content=event.text, annotations=reply.cites.delta(event.text) or None))
            elif isinstance(event, Done):
                answer = event.answer
        assert answer is not None, "the answer stream ended without an answer"
        if sources_list := reply.cites.sources_list(answer):
            yield reply.chunk(ChunkDelta(content=sources_list))
        yield reply.chunk(ChunkDelta(), answer)
        if include_usage:
            yield reply.chunk(None, usage=_usage(answer))
        yield ServerSentEvent("[DONE]")
    except Exception as exc:
        yield ServerSentEvent(error_data(exc))
    finally:
        await run.close()
