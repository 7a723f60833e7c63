"""Pick a generative backend by name; each is created once per process."""

from __future__ import annotations

import threading

from service.llm.base import LLMBackend
from service.settings import Settings

_lock = threading.Lock()
_cache: dict[str, LLMBackend] = {}


def get_backend(name: str, settings: Settings) -> LLMBackend:
    """The `embedded` or `openai` backend (extractive needs no model)."""
    with _lock:
        if name not in _cache:
            if name == "embedded":
                from service.llm.embedded import get_embedded_backend

                _cache[name] = get_embedded_backend()
            elif name == "openai":
                from service.llm.openai_backend import OpenAIBackend

                _cache[name] = OpenAIBackend(settings)
            else:
                raise ValueError(f"no generative backend named {name!r}")
        return _cache[name]
