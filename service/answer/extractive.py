"""The extractive answerer: no generative model, the best retrieved sentence, cited.

Instant and always grounded; the fallback when a generative backend fails. Its output goes
through the same parse → verify path as a model's, so it obeys the same contract.
"""

from __future__ import annotations

import re

from service.answer.context import Context

MODEL = "extractive"  # reported as the answer's model: none ran


# The best sentence saying that the thing asked was not given ("Macron did not specify the
# number of soldiers") means the documents do not have the answer: quoting it as one would
# mislead. (A generative model can use such a sentence to answer a yes/no question instead.)
UNSTATED = re.compile(r"\b(?:do|does|did|has|have|had) not (?:yet )?(?:specify|specified|say|said|mention|"
                      r"mentioned|disclose|disclosed|reveal|revealed|state|stated)\b", re.IGNORECASE)


def answer_text(context: Context, min_relevance: float, max_sentences: int = 1) -> str:
    """'<sentence> [id]' for the most relevant context sentences, or '' when none is relevant."""
    ranked = sorted(range(len(context.sentences)), key=lambda i: context.ranks[i])
    chosen = [i for i in ranked[:max_sentences]
              if context.relevance[i] >= min_relevance and not UNSTATED.search(context.sentences[i].text)]
    return " ".join(f"{context.sentences[i].text} [{i + 1}]" for i in sorted(chosen))
