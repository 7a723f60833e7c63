"""Turn a chat follow-up ("and Germany?") into a standalone question before retrieval.

Retrieval sees one question, not the conversation, so "and Germany?" must become "What did
Germany say about military commitments?" first. Two ways:

- With a generative backend: ask it, with `service/prompts/rewrite_followup.txt` (greedy, one line,
  a few dozen tokens). If it fails or replies with nothing usable, the heuristic is used and
  the result says why.
- Heuristic (the extractive backend; the fallback), applied to each user turn in order so that
  a chain of follow-ups resolves:
  1. "and X?", "what about X?", "how about X?", "what of X?", "same for X?" or a bare "X?"
     (X a phrase of at most four words, not a question itself; a bare X at most three
     capitalised words, like "Germany?" or "The UK?"): when X contains a name (a capitalised word) and the earlier
     question has names after its first word, the earlier name with the same number of words
     as X's name (else the first name) is replaced by X:
     "Who is the Prime Minister of Italy?" + "And Bulgaria?" -> "Who is the Prime Minister of
     Bulgaria?". Otherwise the two are joined ("... security? And when?").
  2. A short question (at most three words: "Why?", "When was that?") or one with a pronoun
     (he, she, it, they, them, his, her, its, their, these, those) is joined to the earlier one.
  3. Anything else is taken to be standalone and left as it is.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from service.answer import prompts
from service.answer.claims import MARKER
from service.llm.base import ChatMessage, LLMBackend, LLMError

log = logging.getLogger("footnote.followup")

HISTORY_TURNS = 6  # most recent turns shown to the model
TURN_CHARS = 400  # each turn is cut to this many characters in the prompt
MAX_TOKENS = 64

_ELLIPSIS = re.compile(
    r"^\s*(?:(?:and|or|but|so)\s*,?\s+)?"
    r"(?:(?:what|how)\s+about|what\s+of|same\s+(?:question\s+)?for|and|or|also)\s*,?\s+"
    r"(?P<rest>.+?)[\s?.!]*$",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-Z][\w\-]*(?:\s+[A-Z][\w\-]*)*")
_ARTICLES = frozenset({"the", "a", "an", "of"})
_QUESTION_WORDS = frozenset(
    "who whom whose what which when where why how is are was were do does did will would can could "
    "should shall may might has have had".split())
_PRONOUNS = frozenset("he she him his her hers it its they them their theirs these those".split())
_LABEL = re.compile(r"^(?:standalone|rewritten)?\s*question\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Rewrite:
    question: str  # the standalone question to answer
    method: str  # "none" (first question) | "llm" | "heuristic"
    warning: str | None = None  # why the heuristic stood in for the model


def standalone_question(messages: Sequence[ChatMessage], llm: LLMBackend | None = None, *,
                        max_chars: int = 2000) -> Rewrite:
    """The last user message of `messages` (oldest first), made standalone using earlier turns."""
    turns = [m for m in messages if m["role"] in ("user", "assistant") and m["content"].strip()]
    last = max((i for i, m in enumerate(turns) if m["role"] == "user"), default=None)
    if last is None:
        raise ValueError("the conversation has no user message")
    question = turns[last]["content"].strip()
    earlier = turns[:last]
    if not any(m["role"] == "user" for m in earlier):
        return Rewrite(question, "none")
    warning = None
    if llm is not None:
        try:
            rewritten = _ask_model(llm, earlier, question)
            if rewritten and len(rewritten) <= max_chars:
                return Rewrite(rewritten, "llm")
            warning = "the model's rewrite of the follow-up was unusable; rewrote it heuristically"
        except LLMError as exc:
            log.warning("follow-up rewrite failed, using the heuristic: %s", exc)
            warning = f"the model could not rewrite the follow-up ({exc}); rewrote it heuristically"
    return Rewrite(heuristic(turns[: last + 1], max_chars=max_chars), "heuristic", warning)


def heuristic(turns: Sequence[ChatMessage], *, max_chars: int = 2000) -> str:
    """The last user question resolved against the user questions before it (see module doc)."""
    standalone = ""
    for message in turns:
        if message["role"] != "user":
            continue
        question = " ".join(message["content"].split())
        standalone = resolve(standalone, question, max_chars=max_chars) if standalone else question
    return standalone


def resolve(previous: str, question: str, *, max_chars: int = 2000) -> str:
    """`question` made standalone using the `previous` (standalone) question."""
    rest = _elliptical_rest(question)
    if rest is not None:
        return _substitute(previous, rest) or _join(previous, question, max_chars)
    words = re.findall(r"[\w']+", question.lower())
    if len(words) <= 3 or _PRONOUNS.intersection(words):
        return _join(previous, question, max_chars)
    return question


def _elliptical_rest(question: str) -> str | None:
    """X of "and X?" / "what about X?" / a bare "X?" (a short phrase, not a question)."""
    match = _ELLIPSIS.match(question)
    if match:
        rest = match.group("rest")
    else:
        words = question.rstrip(" ?.!").split()
        if not 1 <= len(words) <= 3 or not all(w[:1].isupper() or w.lower() in _ARTICLES for w in words):
            return None
        rest = " ".join(words)
    words = rest.split()
    if not words or len(words) > 4 or words[0].lower() in _QUESTION_WORDS:
        return None
    return rest


def _substitute(previous: str, rest: str) -> str | None:
    new = _NAME.search(rest)
    first_word = re.match(r"\s*\S+", previous)
    if new is None or first_word is None:
        return None
    names = list(_NAME.finditer(previous, first_word.end()))  # the first word is capitalised anyway
    if not names:
        return None
    size = len(new.group().split())
    target = next((m for m in names if len(m.group().split()) == size), names[0])
    return previous[: target.start()] + rest + previous[target.end():]


def _join(previous: str, question: str, max_chars: int) -> str:
    previous = previous.rstrip()
    end = "" if previous.endswith(("?", ".", "!")) else "?"
    joined = f"{previous}{end} {question[:1].upper()}{question[1:]}"
    return joined if len(joined) <= max_chars else question


def _ask_model(llm: LLMBackend, earlier: Sequence[ChatMessage], question: str) -> str:
    lines = []
    for message in list(earlier)[-HISTORY_TURNS:]:
        text = " ".join(MARKER.sub("", message["content"]).split())
        if len(text) > TURN_CHARS:
            text = text[: TURN_CHARS - 1].rstrip() + "…"
        lines.append(f"{'User' if message['role'] == 'user' else 'Assistant'}: {text}")
    prompt = prompts.load("rewrite_followup.txt").substitute(history="\n".join(lines), question=question)
    generation = llm.generate([{"role": "user", "content": prompt}], max_tokens=MAX_TOKENS, stop=["\n"])
    return _clean(generation.text)


def _clean(text: str) -> str:
    line = next((line.strip() for line in text.strip().splitlines() if line.strip()), "")
    line = _LABEL.sub("", line).strip().strip("\"'“”").strip()
    return "" if line.upper().startswith("NOT FOUND") else line
