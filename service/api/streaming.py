"""Server-Sent Events responses over an `AnswerRun`."""

from __future__ import annotations

import json
import logging

import anyio
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from service.api.errors import INTERNAL_MESSAGE, error_body, from_answer_error
from service.api.runtime import AnswerRun

log = logging.getLogger("footnote.api")

# Between the shutdown signal and cancelling the stream: time to finish the sentence being
# generated and send the terminal `error` event (below uvicorn's 5 s graceful shutdown).
SHUTDOWN_GRACE_S = 3.0


def sse_response(events: AsyncIterator[ServerSentEvent], run: AnswerRun) -> EventSourceResponse:
    # `events` closes the run when it ends or is cancelled (client gone); the background task
    # covers a response that never started streaming. On shutdown the run raises
    # ServerStopping, which `events` sends as its terminal error event.
    run.stopping = anyio.Event()
    return EventSourceResponse(events, background=BackgroundTask(run.close), shutdown_event=run.stopping,
                               shutdown_grace_period=SHUTDOWN_GRACE_S)


def error_data(exc: Exception) -> str:
    """The JSON of an error met after the stream started (its status line is long sent)."""
    error = from_answer_error(exc)
    if error is None:
        log.error("answer stream failed", exc_info=exc)
        return json.dumps(error_body(500, INTERNAL_MESSAGE))
    return json.dumps(error.body)
