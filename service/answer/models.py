"""The answer object shared by the CLI, the HTTP API and the evals. Keep the field names."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Citation(BaseModel):
    n: int = Field(description="the [n] marker in the answer text")
    document: str
    sentence: int = Field(description="1-based sentence number in its document")
    start: int = Field(description="character offset of the sentence in the document text")
    end: int
    text: str = Field(description="exactly document_text[start:end]")


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Timings(BaseModel):
    retrieve: float = 0.0
    generate: float = 0.0
    verify: float = 0.0
    check: float = 0.0
    total: float = 0.0


class VerificationStats(BaseModel):
    """What verification changed; useful to judge a prompt or a model."""

    claims: int = 0  # answer sentences the model produced (refusal phrases excluded)
    kept: int = 0  # claims that survived, cited
    removed: int = 0  # claims no retrieved sentence supports
    reattributed: int = 0  # claims whose citations were replaced by supporting sentences
    repaired: int = 0  # claims kept after removing a year no cited sentence mentions
    quoted: int = 0  # claims replaced by the sentences they cite: a bare "[2]", or a restated question
    invalid_ids: int = 0  # citation ids the model made up (not in the context)


class AnswerCheck(BaseModel):
    """Whether the kept answer answers this question (service/answer/answerability.py), or, with
    only the answerable probe (service/llm/answerable_probe.py), whether the sentences do."""

    score: float = Field(description="estimated probability that the answer is right (strict mode), or "
                                     "that the sentences answer the question (the probe alone), 0..1")
    threshold: float = Field(description="FOOTNOTE_ANSWER_THRESHOLD: below it the answer is refused")
    passed: bool
    judged: bool = Field(True, description="whether the model's own yes/no judgement was available")
    features: dict[str, float] = Field(default_factory=dict, description="the signals the score combines")


class Answer(BaseModel):
    answer: str
    answerable: bool
    citations: list[Citation] = Field(default_factory=list)
    model: str = ""
    backend: str = Field("", description="embedded | openai | extractive")
    usage: Usage = Field(default_factory=Usage)
    timings_ms: Timings = Field(default_factory=Timings)
    verification: VerificationStats = Field(default_factory=VerificationStats)
    warnings: list[str] = Field(default_factory=list, description="e.g. a fallback to extractive")
    refusal_reason: str | None = Field(None, description="when answerable is false: why, in words")
    check: AnswerCheck | None = Field(None, description="the answer check or the answerable probe, when one ran")
