"""The extractive answerer: no generative model, the best retrieved sentence, cited.

Instant and always grounded; the fallback when a generative backend fails. Its output goes
through the same parse → verify path as a model's, so it obeys the same contract.
"""

from __future__ import annotations

from service.answer.context import Context

MODEL = "extractive"  # reported as the answer's model: none ran


def answer_text(context: Context, min_relevance: float, max_sentences: int = 1) -> str:
    """'<sentence> [id]' for the most relevant context sentences, or '' when none is relevant."""
    ranked = sorted(range(len(context.sentences)), key=lambda i: context.ranks[i])
    chosen = [i for i in ranked[:max_sentences] if context.relevance[i] >= min_relevance]
    return " ".join(f"{context.sentences[i].text} [{i + 1}]" for i in sorted(chosen))
