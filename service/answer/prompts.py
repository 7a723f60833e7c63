"""Prompt templates live as files in the repository's top-level `prompts/`; `service/prompts` is a
link to it, so they are package data and an installed wheel has them too. This module only reads
and fills them. Files are read once per process: they are
part of the installed code, not configuration."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from string import Template

from service.llm.base import ChatMessage

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "prompts"  # service/prompts -> ../prompts


@lru_cache(maxsize=32)
def load(name: str, folder: Path = DEFAULT_DIR) -> Template:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"prompt template {path} is missing")
    return Template(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=8)
def examples(folder: Path = DEFAULT_DIR, name: str = "answer_examples.json") -> tuple[ChatMessage, ...]:
    """Worked examples, as earlier chat turns (a 1.5B model copies their form)."""
    turns = json.loads((folder / name).read_text(encoding="utf-8"))
    return tuple({"role": t["role"], "content": t["content"]} for t in turns)


def answer_messages(question: str, context: str, folder: Path = DEFAULT_DIR) -> list[ChatMessage]:
    """System rules and examples first (the same for every question, so llama.cpp reuses
    their processed prefix), then this question's sentences and the question."""
    system = load("answer_system.txt", folder).substitute()
    user = load("answer_user.txt", folder).substitute(context=context, question=question.strip())
    return [{"role": "system", "content": system}, *examples(folder), {"role": "user", "content": user}]


def judge_messages(question: str, text: str, answer: str, folder: Path = DEFAULT_DIR) -> list[ChatMessage]:
    """The answer check: rules and examples first (a cached prefix), then this text, question
    and proposed answer. Only the probability of "yes" against "no" is read from the reply."""
    system = load("judge_system.txt", folder).substitute()
    user = load("judge_user.txt", folder).substitute(text=text, question=question.strip(), answer=answer)
    return [{"role": "system", "content": system}, *examples(folder, "judge_examples.json"),
            {"role": "user", "content": user}]


def recheck_messages(answer_messages: list[ChatMessage], reply: str, folder: Path = DEFAULT_DIR) -> list[ChatMessage]:
    """The answer conversation continued: the model's own reply, then "check it: yes or no?".
    It shares the whole answer prompt as a prefix, so it costs only the reply and these words."""
    check = load("recheck_user.txt", folder).substitute()
    return [*answer_messages, {"role": "assistant", "content": reply}, {"role": "user", "content": check}]
