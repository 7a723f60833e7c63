"""Every answering backend by name: the one list that settings, the request schema, the CLI's
`--backend` choices and `/v1/models` derive from.

A backend is *generative* when it runs a model: it needs a turn at the generation slot, can
rewrite chat follow-ups, and falls back to the extractive answerer when it fails. The
extractive backend runs no model (`create` is None): the answer service quotes the best
retrieved sentence itself. Instances are created by `service.container.Container`, which
caches them per settings; nothing here holds state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.errors import FootnoteError

if TYPE_CHECKING:
    from service.llm.base import LLMBackend
    from service.settings import Settings


class UnknownBackend(FootnoteError, ValueError):
    """A backend name that is not in the registry."""


@dataclass(frozen=True)
class BackendSpec:
    name: str
    help: str
    create: Callable[[Settings], LLMBackend] | None = None  # None: no model to run

    @property
    def generative(self) -> bool:
        return self.create is not None


def _embedded(settings: Settings) -> LLMBackend:
    from service.llm.embedded import get_embedded_backend

    return get_embedded_backend(settings)


def _openai(settings: Settings) -> LLMBackend:
    from service.llm.openai_backend import OpenAIBackend

    return OpenAIBackend(settings)


EXTRACTIVE = "extractive"  # the fallback when a generative backend fails
BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec("embedded", "the local GGUF model, run by llama.cpp", _embedded),
    BackendSpec("openai", "any OpenAI-compatible server", _openai),
    BackendSpec(EXTRACTIVE, "no model: the best retrieved sentence, cited"),
)}
NAMES: tuple[str, ...] = tuple(BACKENDS)


def spec(name: str) -> BackendSpec:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UnknownBackend(f"unknown backend {name!r}; choose one of {', '.join(NAMES)}") from None


def create(name: str, settings: Settings) -> LLMBackend:
    """A new instance of the generative backend `name` (callers cache it: see the container)."""
    chosen = spec(name)
    if chosen.create is None:
        raise UnknownBackend(f"the {name} backend runs no model")
    return chosen.create(settings)
