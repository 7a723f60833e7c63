"""Pack the evidence for a question, numbered, into the model's token budget: whole documents
when they fit (a reusable prompt prefix), else the best retrieved sentences."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from service.index.hybrid import Hit
from service.records import Sentence


@lru_cache(maxsize=1)
def _encoding():
    from service.offline import point_tiktoken_at_bundled_cache

    point_tiktoken_at_bundled_cache()  # before tiktoken looks for cl100k_base: never download it
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


@dataclass(frozen=True)
class Context:
    """Numbered sentences shown to the model; `ids[n]` is the sentence behind `[n]`."""

    sentences: list[Sentence]  # position i is context id i + 1
    relevance: list[float]  # dense cosine of each sentence with the question
    ranks: list[int]  # retrieval rank of each sentence (0 = best)
    tokens: int

    def by_id(self, n: int) -> Sentence | None:
        return self.sentences[n - 1] if 1 <= n <= len(self.sentences) else None

    def render(self) -> str:
        """One line per sentence: `[n] text`. (Document names and numbers in the lines made
        the small model cite them instead of answering.)"""
        return "\n".join(f"[{i}] {s.text}" for i, s in enumerate(self.sentences, start=1))


def pack(hits: list[Hit], budget_tokens: int) -> Context:
    """Take hits best-first until the budget is spent, then order them as they read.

    Reading order (document, sentence number) lets the model resolve "he" and "the
    country" from the sentence before; selection by rank keeps the best evidence in.
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
    chosen.sort(key=lambda rh: (rh[1].sentence.document, rh[1].sentence.sentence))
    return Context(
        [h.sentence for _, h in chosen], [h.dense for _, h in chosen], [r for r, _ in chosen], used
    )


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
