"""`POST /v1/ask`: a question in, the verified answer object out (JSON, or an SSE stream)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from sse_starlette import ServerSentEvent

from service.answer.events import AnswerEvent, Cited, Delta, Done, Progress
from service.answer.models import Answer
from service.api.auth import bearer_scheme
from service.api.runtime import AnswerRun, runtime_of
from service.api.schemas import ASK_STREAM, AskRequest, DeltaEvent, ErrorResponse
from service.api.streaming import error_data, sse_response

router = APIRouter(tags=["answers"], dependencies=[Depends(bearer_scheme)])

STREAM_DOC = (
    "With `\"stream\": true` or `Accept: text/event-stream`: Server-Sent Events named `citation` "
    "(a citation object, sent once, before the delta that first uses its [n]), `delta` "
    "(`{\"text\": ...}`, verified answer text), `done` (the complete answer object; the source of "
    "truth) and `error` (`{\"error\": {...}}`, then the stream ends)."
)

ERRORS = {
    400: {"model": ErrorResponse, "description": "the body is not valid JSON"},
    401: {"model": ErrorResponse, "description": "missing or invalid API key"},
    404: {"model": ErrorResponse, "description": "an unknown document id"},
    413: {"model": ErrorResponse, "description": "the body is too large"},
    422: {"model": ErrorResponse, "description": "an invalid body: empty or too long question, wrong types"},
    429: {"model": ErrorResponse, "description": "the generation queue is full; see Retry-After"},
    502: {"model": ErrorResponse, "description": "the generative backend failed (fallback disabled)"},
    503: {"model": ErrorResponse, "description": "not ready, or no turn within the queue wait; see Retry-After"},
    504: {"model": ErrorResponse, "description": "the answer took longer than FOOTNOTE_REQUEST_TIMEOUT_S"},
}


def wants_event_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "").lower()


@router.post(
    "/v1/ask", response_model=Answer, summary="Answer a question from the documents, with citations",
    description=STREAM_DOC,
    responses={200: {"content": {"text/event-stream": {"schema": ASK_STREAM}}}, **ERRORS},
)
async def ask(body: AskRequest, request: Request):
    arrived = time.monotonic()
    runtime = runtime_of(request)
    run = await runtime.open_run(question=runtime.check_question(body.question), backend=body.backend,
                                 top_k=body.top_k, documents=runtime.check_documents(body.documents),
                                 arrived=arrived)
    if body.stream or wants_event_stream(request):
        return sse_response(answer_events(run), run)
    return await run.result(request)


def _data(event: AnswerEvent) -> str:
    match event:
        case Cited(citation=citation):
            return citation.model_dump_json()
        case Delta(text=text):
            return DeltaEvent(text=text).model_dump_json()
        case Done(answer=answer):
            return answer.model_dump_json()


async def answer_events(run: AnswerRun) -> AsyncIterator[ServerSentEvent]:
    try:
        while (event := await run.next_event()) is not None:
            if not isinstance(event, Progress):  # a tick that lets us notice a client that left
                yield ServerSentEvent(_data(event), event=event.kind)
    except Exception as exc:
        yield ServerSentEvent(error_data(exc), event="error")
    finally:
        await run.close()
