"""Pack the evidence for a question, numbered, into the model's token budget: whole documents
when they fit (a reusable prompt prefix), else the best retrieved sentences."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from service.index.hybrid import Hit
from service.records import Sentence
from service.tokens import count_tokens


@dataclass(frozen=True)
class Context:
    """Numbered sentences shown to the model; `ids[n]` is the sentence behind `[n]`."""

    sentences: list[Sentence]  # position i is context id i + 1
    relevance: list[float]  # dense cosine of each sentence with the question
    ranks: list[int]  # retrieval rank of each sentence (0 = best)
    tokens: int

    def by_id(self, n: int) -> Sentence | None:
        return self.sentences[n - 1] if 1 <= n <= len(self.sentences) else None

    def read_with_neighbours(self, cited: list[Sentence]) -> list[Sentence]:
        """The cited sentences, each with the shown sentence that its words point back to or
        that points back at it: "President Zelensky stressed ..." cited for "who said the
        participation must be clarified?" is read with the "He said that ..." after it."""
        shown = {(s.document, s.sentence): s for s in self.sentences}
        out: list[Sentence] = []
        for s in cited:
            before = shown.get((s.document, s.sentence - 1))
            after = shown.get((s.document, s.sentence + 1))
            for t in (before if before is not None and points_back(s.text) else None, s,
                      after if after is not None and points_back(after.text) else None):
                if t is not None and t not in out:
                    out.append(t)
        return out

    def render(self) -> str:
        """One line per sentence: `[n] text`. (Document names and numbers in the lines made
        the small model cite them instead of answering.)"""
        return "\n".join(f"[{i}] {s.text}" for i, s in enumerate(self.sentences, start=1))


# A sentence that opens by pointing back ("He said that ...", "These forces ...") names its
# subject in the sentence before; without it the model credits the words to whoever it saw last.
_POINTS_BACK = re.compile(r"^\W*(he|she|it|they|his|her|its|their|them|this|these|those|such)\b", re.IGNORECASE)


def points_back(text: str) -> bool:
    return bool(_POINTS_BACK.match(text))


def pack(hits: list[Hit], budget_tokens: int,
         sentences_of: Callable[[str], list[Sentence]] | None = None) -> Context:
    """Take hits best-first until the budget is spent, then order them as they read.

    Reading order (document, sentence number) lets the model resolve "he" and "the
    country" from the sentence before; selection by rank keeps the best evidence in. With
    `sentences_of`, a chosen sentence that points back ("He said ...") brings the sentence
    before it along, best-ranked first, while the budget lasts.
    """
    chosen: list[tuple[int, Hit]] = []
    used = 0
    for rank, hit in enumerate(hits):
        line = f"[{len(chosen) + 1}] "
        cost = count_tokens(line + hit.sentence.text) + 1
        if used + cost > budget_tokens:
            continue  # a shorter, lower-ranked sentence may still fit
        chosen.append((rank, hit))
        used += cost
    sentences = [h.sentence for _, h in chosen]
    relevance = [h.dense for _, h in chosen]
    ranks = [r for r, _ in chosen]
    if sentences_of is not None:
        keys = {s.key for s in sentences}
        for s in list(sentences):
            if s.sentence <= 1 or not points_back(s.text):
                continue
            before = sentences_of(s.document)[s.sentence - 2]
            cost = count_tokens(f"[{len(sentences) + 1}] {before.text}") + 1
            if before.key in keys or used + cost > budget_tokens:
                continue
            sentences.append(before)
            relevance.append(0.0)  # not retrieved: never the reason to answer
            ranks.append(len(hits))
            keys.add(before.key)
            used += cost
    order = sorted(range(len(sentences)), key=lambda i: (sentences[i].document, sentences[i].sentence))
    return Context([sentences[i] for i in order], [relevance[i] for i in order], [ranks[i] for i in order], used)


def pack_documents(hits: list[Hit], sentences_of: Callable[[str], list[Sentence]], budget_tokens: int) -> Context | None:
    """Whole documents, numbered, when those the best hits come from fit `budget_tokens`.

    The same documents give the same prompt prefix whatever the question, so a saved model
    state for it (service/llm/prefix_states.py) makes a later question about them cost only its
    own tokens. Documents are taken in order of their best hit while they fit, then laid out by
    id; None when even the best hit's document does not fit (pack the sentences instead).
    """
    if budget_tokens <= 0 or not hits:
        return None
    best: dict[str, int] = {}
    for rank, hit in enumerate(hits):
        best.setdefault(hit.sentence.document, rank)
    chosen: list[str] = []
    used = 0
    for doc in sorted(best, key=best.__getitem__):
        lines = sentences_of(doc)
        cost = sum(count_tokens(f"[{used + i}] {s.text}") + 1 for i, s in enumerate(lines, start=1))
        if used + cost > budget_tokens:
            break  # later documents are less relevant: stop rather than skip (a stable prefix)
        chosen.append(doc)
        used += cost
    if not chosen:
        return None
    by_key = {h.sentence.key: (rank, h) for rank, h in enumerate(hits)}
    sentences: list[Sentence] = []
    relevance: list[float] = []
    ranks: list[int] = []
    for doc in sorted(chosen):
        for s in sentences_of(doc):
            rank, hit = by_key.get(s.key, (len(hits) + len(sentences), None))
            sentences.append(s)
            relevance.append(hit.dense if hit else 0.0)  # not retrieved: unknown, never the best
            ranks.append(rank)
    return Context(sentences, relevance, ranks, used)
