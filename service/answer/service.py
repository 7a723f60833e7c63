"""The answer service: one path from question to verified, cited answer.

ask_stream() is the path; ask() drains it. Events, in order:
  ("citation", Citation)  before the first delta that uses its [n]
  ("delta", str)          verified answer text, one claim at a time
  ("done", Answer)        the complete answer object (the source of truth)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from service.answer import extractive, prompts
from service.answer.claims import complete_prefix, parse_answer, parse_claim
from service.answer.context import Context, pack
from service.answer.models import Answer, Citation, Timings, Usage
from service.answer.verify import Verifier
from service.index.hybrid import HybridRetriever
from service.llm.base import Generation, LLMBackend, LLMBusy, LLMCrashed, LLMError
from service.settings import Settings

log = logging.getLogger("footnote.answer")

Event = tuple[str, object]
BACKENDS = ("embedded", "openai", "extractive")


class UnknownBackend(ValueError):
    pass


class InvalidQuestion(ValueError):
    """The question cannot be asked as given; the message says why."""


def clean_question(question: str, max_chars: int) -> str:
    """The question stripped, or InvalidQuestion: the one rule the CLI and HTTP share."""
    question = question.strip()
    if not question:
        raise InvalidQuestion("the question is empty")
    if len(question) > max_chars:
        raise InvalidQuestion(f"the question is {len(question)} characters long; the limit is "
                              f"{max_chars} (FOOTNOTE_MAX_QUESTION_CHARS)")
    return question


@dataclass
class _Clock:
    retrieve: float = 0.0
    generate: float = 0.0
    verify: float = 0.0


class AnswerService:
    def __init__(
        self,
        retriever: HybridRetriever,
        settings: Settings,
        backend_factory: Callable[[str], LLMBackend],
    ) -> None:
        self.retriever = retriever
        self.settings = settings
        self._backend_factory = backend_factory

    # -- public -------------------------------------------------------------

    def backend(self, name: str) -> LLMBackend:
        """The generative backend `name` (the HTTP API uses it to rewrite chat follow-ups)."""
        return self._backend_factory(name)

    def ask(self, question: str, top_k: int | None = None, documents: Iterable[str] | None = None,
            backend: str | None = None) -> Answer:
        for kind, payload in self.ask_stream(question, top_k, documents, backend):
            if kind == "done":
                return payload  # type: ignore[return-value]
        raise RuntimeError("answer stream ended without a result")  # pragma: no cover

    def ask_stream(self, question: str, top_k: int | None = None,
                   documents: Iterable[str] | None = None, backend: str | None = None) -> Iterator[Event]:
        name = backend or self.settings.resolved_backend
        if name not in BACKENDS:
            raise UnknownBackend(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
        t0 = time.perf_counter()
        clock = _Clock()

        hits = self.retriever.retrieve(question, top_k or self.settings.top_k, documents)
        context = pack(hits, self.settings.context_tokens)
        clock.retrieve = _ms(t0)

        verifier = Verifier(context, question, self._similarity)
        usage = Usage()
        warnings: list[str] = []
        model = "none"  # no model is called when nothing retrieved is relevant
        relevant = bool(context.relevance) and max(context.relevance) >= self.settings.min_relevance

        if not relevant:
            used = name  # refused on evidence: nothing retrieved is about the question
        elif name == "extractive":
            used, model = "extractive", extractive.MODEL
            yield from self._verify_text(extractive.answer_text(context, self.settings.min_relevance),
                                         verifier, clock)
        else:
            used = name
            try:
                llm = self._backend_factory(name)
                model = llm.model
                generation = yield from self._generate(llm, question, context, verifier, clock)
                usage = Usage(prompt_tokens=generation.prompt_tokens,
                              completion_tokens=generation.completion_tokens)
            except (LLMBusy, LLMCrashed):
                raise  # transient: the client should retry, not get a lesser answer
            except LLMError as exc:
                if not self.settings.llm_fallback:
                    raise
                if verifier.citations:  # failed mid-answer: keep the verified part
                    warnings.append(f"the {name} backend failed mid-answer ({exc}); the answer is cut short")
                else:
                    log.warning("%s backend failed, answering extractively: %s", name, exc)
                    warnings.append(f"the {name} backend failed ({exc}); answered extractively instead")
                    used, model = "extractive", extractive.MODEL
                    yield from self._verify_text(
                        extractive.answer_text(context, self.settings.min_relevance), verifier, clock)

        answerable = bool(verifier.citations)
        text = verifier.answer_text if answerable else self.settings.refusal_message
        if not answerable:
            yield "delta", text
        answer = Answer(
            answer=text,
            answerable=answerable,
            citations=verifier.citations if answerable else [],
            model=model,
            backend=used,
            usage=usage,
            timings_ms=Timings(retrieve=round(clock.retrieve, 2), generate=round(clock.generate, 2),
                               verify=round(clock.verify, 2), total=round(_ms(t0), 2)),
            verification=verifier.stats,
            warnings=warnings,
        )
        yield "done", answer

    # -- steps --------------------------------------------------------------

    def _generate(self, llm: LLMBackend, question: str, context: Context, verifier: Verifier,
                  clock: _Clock) -> Iterator[Event]:
        """Stream the model's answer, verifying and emitting each sentence once it is final."""
        messages = prompts.answer_messages(question, context.render())
        buffer = ""  # everything the model said
        pending = ""  # what is not yet verified
        label_checked = False
        generation: Generation | None = None
        started = time.perf_counter()
        stream = llm.stream(messages, max_tokens=self.settings.llm_max_tokens)
        try:
            for item in stream:
                if isinstance(item, Generation):
                    generation = item
                    continue
                buffer += item
                pending += item
                if not label_checked:
                    if len(pending.lstrip()) < len("Answer:"):
                        continue
                    pending, label_checked = _strip_label(pending), True
                finished, pending = complete_prefix(pending)
                if finished:
                    clock.generate += _ms(started)
                    yield from self._verify_claims([parse_claim(s) for s in finished], verifier, clock)
                    started = time.perf_counter()
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()  # a client that went away stops the generation
        clock.generate += _ms(started)
        yield from self._verify_claims(parse_answer(_strip_label(pending)), verifier, clock)
        return generation or Generation(buffer, llm.model)

    def _verify_text(self, text: str, verifier: Verifier, clock: _Clock) -> Iterator[Event]:
        yield from self._verify_claims(parse_answer(text), verifier, clock)

    def _verify_claims(self, claims, verifier: Verifier, clock: _Clock) -> Iterator[Event]:
        for claim in claims:
            t = time.perf_counter()
            kept = verifier.add(claim)
            clock.verify += _ms(t)
            if kept is None:
                continue
            for citation in kept.citations:
                yield "citation", citation
            yield "delta", (" " if verifier.stats.kept > 1 else "") + kept.text

    def _similarity(self, claim: str, sources: list[str]) -> float:
        return self.retriever.similarity(claim, " ".join(sources))


def _strip_label(text: str) -> str:
    """Models sometimes echo the prompt's "Answer:" label."""
    stripped = text.lstrip()
    return stripped[len("Answer:"):].lstrip() if stripped.startswith("Answer:") else stripped


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
