"""What `AnswerService.ask_stream` yields, in order:

  Cited(citation)  before the first Delta that uses its [n]
  Delta(text)      verified answer text, one claim at a time
  Done(answer)     the complete answer object (the source of truth), last
  Progress()       nothing to show yet, the model is still working (while an answer waits for
                   its check): lets a server notice a client that left and stop the model

`kind` is the name each travels under in `/v1/ask`'s Server-Sent Events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from service.answer.models import Answer, Citation


@dataclass(frozen=True, slots=True)
class Cited:
    kind: ClassVar[str] = "citation"
    citation: Citation


@dataclass(frozen=True, slots=True)
class Delta:
    kind: ClassVar[str] = "delta"
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    kind: ClassVar[str] = "done"
    answer: Answer


@dataclass(frozen=True, slots=True)
class Progress:
    kind: ClassVar[str] = "progress"


AnswerEvent = Cited | Delta | Done | Progress
