"""Does the kept answer answer *this* question? The check that catches look-alike questions.

The verifier proves that an answer's words come from the sentences it cites. That is not enough:
SQuAD 2.0's unanswerable questions share the sentence's entities and swap the relation ("Which
country's leader said he would send troops?" against "Meloni will not send troops"), so a copied
span passes. This check forms the proposition — question, proposed answer, cited sentences — and
scores it with a small logistic model over signals that each catch part of it:

- `recheck`: the answering conversation continued with "check your answer: does the sentence
  you cited say that, for exactly this question? yes or no" (prompts/recheck_user.txt), P(yes)
  from the model's next-token probabilities. It shares the answer's whole prompt as a prefix,
  so it costs only its own ~40 tokens;
- `judge`: the same question put to the model afresh, with only the cited sentences, the
  question and the proposed answer (prompts/judge_*), P(yes) likewise; used when the fitted
  weights ask for it (it costs the sentences and question again);
- `facts_missing`: the share of the question's names and numbers the cited sentences lack
  (a constraint of the question that the evidence does not carry: "September 5");
- `question_overlap`: the share of the question's content words found in the cited sentences;
- `similarity`: embedding cosine of the question with the cited sentences;
- `reattributed`: the model cited the wrong sentence and the verifier found another.
- `probe`: the answerable probe's P(answerable), read from the model's hidden state at the end
  of the answer prompt (service/llm/answerable_probe.py; embedded backend only).

The weights are fitted on ../shared/benchmarks/squad2-train by `evals/fit_answer_check.py` and
ship in `answer_check.json` (the judge; any backend) and `answer_check_probe.json` (the judge and
the probe; the embedded model); the threshold is FOOTNOTE_ANSWER_THRESHOLD (README shows the
trade-off curve it was chosen from).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from service.answer import prompts, support
from service.answer.models import AnswerCheck
from service.llm.base import ChatMessage, LLMBackend, LLMBusy, LLMCrashed, LLMError

WEIGHTS_FILE = Path(__file__).with_name("answer_check.json")  # for backends without a probe
PROBE_WEIGHTS_FILE = Path(__file__).with_name("answer_check_probe.json")  # with the answerable probe
FEATURES = ("recheck", "judge", "facts_missing", "question_overlap", "similarity", "reattributed", "probe")
JUDGES = ("recheck", "judge")  # signals that cost a model call

Similarity = Callable[[str, str], float]


@dataclass(frozen=True)
class Weights:
    intercept: float
    coefficients: dict[str, float]
    means: dict[str, float]
    scales: dict[str, float]

    def score(self, features: dict[str, float]) -> float:
        z = self.intercept + sum(
            self.coefficients[name] * (features[name] - self.means[name]) / self.scales[name]
            for name in self.coefficients
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@lru_cache(maxsize=4)
def load_weights(path: Path = WEIGHTS_FILE) -> Weights:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Weights(float(data["intercept"]), dict(data["coefficients"]), dict(data["means"]), dict(data["scales"]))


def lexical_features(question: str, sources: list[str]) -> dict[str, float]:
    """How much of the question's constraints the cited sentences carry."""
    facts = support.facts(question)
    wanted = [*facts.numbers, *facts.names]
    missing = support.check(question, sources).missing_facts if wanted else ()
    words = support.content_words(question)
    found = support.found_in(words, sources)
    return {
        "facts_missing": len(missing) / len(wanted) if wanted else 0.0,
        "question_overlap": found / len(words) if words else 1.0,
    }


class AnswerChecker:
    """Scores a kept answer against its question; `llm` is the answering model (the judge)."""

    def __init__(self, llm: LLMBackend, similarity: Similarity, threshold: float,
                 weights: Weights | None = None, all_signals: bool = False,
                 probe: float | None = None) -> None:
        self.llm = llm
        self.probe = probe  # the answerable probe's score for this prompt, when the backend has one
        self.similarity = similarity
        self.threshold = threshold
        self.all_signals = all_signals  # compute every model signal, weighted or not (for fitting)
        # Fitted twice: with the probe's score where the backend has one, and without it.
        self.weights = weights or load_weights(PROBE_WEIGHTS_FILE if probe is not None else WEIGHTS_FILE)

    def _yes(self, messages: list[ChatMessage]) -> float | None:
        """P(yes) from the model; None when it could not be asked (the check then leans on the
        other signals, and says so)."""
        try:
            return self.llm.choice_probabilities(messages, ["yes", "no"]).get("yes", 0.5)
        except (LLMBusy, LLMCrashed):
            raise
        except LLMError:
            return None

    def check(self, question: str, answer: str, sources: list[str], reattributed: bool,
              conversation: list[ChatMessage] | None = None, reply: str = "") -> AnswerCheck:
        """`conversation` and `reply`: the answer prompt and what the model said (for `recheck`)."""
        wanted = set(self.weights.coefficients) if not self.all_signals else set(JUDGES)
        judged: dict[str, float | None] = {}
        if "recheck" in wanted and conversation is not None:
            judged["recheck"] = self._yes(prompts.recheck_messages(conversation, reply or answer))
        if "judge" in wanted:
            judged["judge"] = self._yes(prompts.judge_messages(question, " ".join(sources), answer))
        features = {
            **{name: (0.5 if judged.get(name) is None else judged[name]) for name in JUDGES},
            **lexical_features(question, sources),
            "similarity": float(self.similarity(question, " ".join(sources))),
            "reattributed": 1.0 if reattributed else 0.0,
            # Without a probe (a remote backend) the feature sits at its mean: it moves nothing.
            "probe": self.probe if self.probe is not None else self.weights.means.get("probe", 0.5),
        }
        score = self.weights.score(features)
        return AnswerCheck(score=round(score, 4), threshold=self.threshold, passed=score >= self.threshold,
                           judged=bool(judged) and all(v is not None for v in judged.values()),
                           features={k: round(v, 4) for k, v in features.items()})


def refusal_reason(question: str, sources: list[str]) -> str:
    """Why a checked answer was refused, in words a user can act on."""
    facts = support.question_facts(question)
    if facts.names or facts.numbers:
        asked = facts.names | facts.numbers
        missing = [m for m in support.check(question, sources).missing_facts if m in asked]
        if missing:
            return ("the closest sentences do not mention " + ", ".join(f"'{m}'" for m in missing[:3])
                    + " from the question")
    return "the closest sentences are about the question's subject but do not say what it asks"
