"""Pack the best retrieved sentences, numbered, into the model's token budget."""

from __future__ import annotations

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
