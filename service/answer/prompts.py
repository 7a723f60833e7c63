"""Prompt templates live as files in `prompts/`; this module only reads and fills them."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from string import Template

from service.llm.base import ChatMessage

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "prompts"


@lru_cache(maxsize=32)
def load(name: str, folder: Path = DEFAULT_DIR) -> Template:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"prompt template {path} is missing")
    return Template(path.read_text(encoding="utf-8"))


def answer_messages(question: str, context: str, folder: Path = DEFAULT_DIR) -> list[ChatMessage]:
    system = load("answer_system.txt", folder).substitute(context=context)
    user = load("answer_user.txt", folder).substitute(question=question.strip())
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
