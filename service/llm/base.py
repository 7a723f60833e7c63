"""The one interface every generative backend implements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict

from service.errors import FootnoteError


class ChatMessage(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass
class Generation:
    """A finished generation: the text and what it cost."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


def drain(stream: Iterator[str | Generation]) -> Generation:
    """A `stream()` consumed to its final Generation (what `generate` is for a streaming backend)."""
    for item in stream:
        if isinstance(item, Generation):
            return item
    raise LLMError("The local model stopped without finishing its answer.")


class LLMError(FootnoteError):
    """The backend failed after its retries; the message is safe to show a user."""


class LLMTimeout(LLMError):
    """The backend did not answer in time."""


class LLMBusy(LLMError):
    """The backend's generation slot stayed taken longer than the bounded wait."""


class LLMCrashed(LLMError):
    """The model process died (or is restarting after it did); retrying shortly will work."""


class LLMBackend(Protocol):
    name: str  # "embedded" | "openai"
    model: str

    def generate(
        self, messages: list[ChatMessage], *, max_tokens: int, stop: list[str] | None = None
    ) -> Generation:
        """Complete a chat and return the whole text (temperature 0)."""
        ...

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str | Generation]:
        """Yield text deltas as they arrive, then exactly one final `Generation`."""
        ...

    def choice_probabilities(self, messages: list[ChatMessage], options: Sequence[str]) -> dict[str, float]:
        """How likely the reply starts with each option (e.g. "yes", "no"), summing to 1."""
        ...

    def answerability(self, messages: list[ChatMessage]) -> float | None:
        """P(answerable) from a probe of the model's hidden state at the prompt's end, or None
        where the backend cannot see one (a remote server). Primes the prompt for `stream`."""
        ...

    def unavailable(self) -> str | None:
        """Why the backend cannot answer right now (e.g. its model is restarting), else None."""
        ...
