"""The answer service: one path from question to verified, cited answer.

ask_stream() is the path; ask() drains it. It yields `service.answer.events`: Cited before the
first Delta that uses its [n], Delta with verified text one claim at a time, and Done with the
complete answer object last. prepare() is the retrieve -> pack -> relevance gate step that
every answer starts with, exposed for counting what a prompt would cost (the evals).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from service.answer import extractive, followup, prompts
from service.answer.claims import Claim, complete_prefix, parse_answer, parse_claim
from service.answer.context import Context, pack, pack_documents
from service.answer.events import AnswerEvent, Cited, Delta, Done, Progress
from service.answer.answerability import AnswerChecker, refusal_reason
from service.answer.models import Answer, AnswerCheck, Timings, Usage
from service.answer.verify import VerifiedClaim, Verifier
from service.errors import FootnoteError
from service.index.hybrid import HybridRetriever
from service.index.store import IndexData
from service.llm import registry
from service.llm.base import ChatMessage, Generation, LLMBackend, LLMBusy, LLMCrashed, LLMError
from service.settings import Settings
from service.tokens import count_tokens

log = logging.getLogger("footnote.answer")


class InvalidQuestion(FootnoteError, ValueError):
    """The question cannot be asked as given; the message says why."""


class BackendNotAllowed(registry.UnknownBackend):
    """The operator did not enable this backend (FOOTNOTE_ALLOWED_BACKENDS); the message lists those enabled."""

    def __init__(self, name: str, allowed: list[str]) -> None:
        super().__init__(f"the backend {name!r} is not enabled on this server; choose one of "
                         f"{', '.join(allowed)} (FOOTNOTE_ALLOWED_BACKENDS)")
        self.name = name
        self.allowed = allowed


def choose_backend(settings: Settings, name: str | None = None) -> str:
    """The backend to answer with: `name`, or the default, if the operator enabled it.

    The one gate between a request and a backend: the answer service checks every name with it
    before a backend is loaded or contacted (BackendNotAllowed, UnknownBackend otherwise)."""
    allowed = settings.allowed_backend_list
    chosen = name or allowed[0]
    registry.spec(chosen)  # UnknownBackend for a name no registry entry has
    if chosen not in allowed:
        raise BackendNotAllowed(chosen, allowed)
    return chosen


def clean_question(question: str, max_chars: int) -> str:
    """The question stripped, or InvalidQuestion: the one rule the CLI and HTTP share."""
    question = question.strip()
    if not question:
        raise InvalidQuestion("the question is empty")
    if not any(c.isalnum() for c in question):  # punctuation, spaces, zero-width characters only
        raise InvalidQuestion("the question is empty: it has no letters or digits")
    if len(question) > max_chars:
        raise InvalidQuestion(f"the question is {len(question)} characters long; the limit is "
                              f"{max_chars} (FOOTNOTE_MAX_QUESTION_CHARS)")
    return question


@dataclass
class _Clock:
    retrieve: float = 0.0
    generate: float = 0.0
    verify: float = 0.0
    check: float = 0.0


class _Refused(Exception):
    """The answer check turned the first kept claim down: the whole answer becomes a refusal."""

    def __init__(self, check: AnswerCheck, reason: str) -> None:
        super().__init__(reason)
        self.check = check
        self.reason = reason


Gate = Callable[[VerifiedClaim, list[ChatMessage], str], AnswerCheck]


@dataclass(frozen=True)
class Prepared:
    """The evidence for one question: the packed context, and whether it is worth asking about."""

    question: str
    context: Context
    relevant: bool  # False: nothing retrieved is about the question; refuse without a model

    def messages(self) -> list[ChatMessage]:
        """The prompt a generative backend is sent."""
        return prompts.answer_messages(self.question, self.context.render())


class AnswerService:
    def __init__(
        self,
        retriever: HybridRetriever,
        settings: Settings,
        backend_factory: Callable[[str], LLMBackend],
    ) -> None:
        self._retriever = retriever
        self.settings = settings
        self._backend_factory = backend_factory

    # -- the index -----------------------------------------------------------

    @property
    def retriever(self) -> HybridRetriever:
        return self._retriever

    @property
    def index(self) -> IndexData:
        """The live index: its documents (manifest, texts) and sentences."""
        return self._retriever.index

    def swap_retriever(self, retriever: HybridRetriever) -> None:
        """Serve a new index version; answers already under way finish on the one they began with."""
        self._retriever = retriever

    # -- public -------------------------------------------------------------

    def choose_backend(self, name: str | None = None) -> str:
        return choose_backend(self.settings, name)

    def backend(self, name: str) -> LLMBackend:
        """The generative backend `name` (loads its model on first use), if the operator enabled it."""
        return self._backend_factory(self.choose_backend(name))

    def ask(self, question: str, top_k: int | None = None, documents: Iterable[str] | None = None,
            backend: str | None = None) -> Answer:
        for event in self.ask_stream(question, top_k, documents, backend):
            if isinstance(event, Done):
                return event.answer
        raise RuntimeError("answer stream ended without a result")  # pragma: no cover

    def prepare(self, question: str, top_k: int | None = None, documents: Iterable[str] | None = None,
                retriever: HybridRetriever | None = None, whole_documents: bool = True) -> Prepared:
        """Retrieve, pack into the token budget, and judge relevance: the first step of an answer.
        A model reads whole documents when they fit (a prefix it has seen before costs nothing)."""
        retriever = retriever or self._retriever
        hits = retriever.retrieve(question, top_k or self.settings.top_k, documents)
        context = None
        if whole_documents:
            context = pack_documents(hits, retriever.index.sentences_of, self.settings.document_context_tokens)
        context = context or pack(hits, self.settings.context_tokens,
                                  retriever.index.sentences_of if self.settings.context_antecedents else None)
        relevant = bool(context.relevance) and max(context.relevance) >= self.settings.min_relevance
        return Prepared(question, context, relevant)

    def prompt_tokens(self, question: str, top_k: int | None = None,
                      documents: Iterable[str] | None = None) -> int:
        """Tokens (tiktoken cl100k) of the prompt a generative backend would be sent; 0 when the
        answer is refused on evidence before any model call."""
        prepared = self.prepare(question, top_k, documents)
        return sum(count_tokens(m["content"]) for m in prepared.messages()) if prepared.relevant else 0

    def standalone_question(self, conversation: Sequence[ChatMessage],
                            backend: str | None = None) -> followup.Rewrite:
        """The conversation's last user message made standalone: by the answering model when it
        is generative and there is an earlier question, else (or when it cannot load) heuristically."""
        name = self.choose_backend(backend)
        max_chars = self.settings.max_question_chars
        llm = None
        if registry.spec(name).generative and sum(m["role"] == "user" for m in conversation) > 1:
            try:
                llm = self.backend(name)
            except LLMError as exc:
                rewrite = followup.standalone_question(conversation, None, max_chars=max_chars)
                return followup.Rewrite(rewrite.question, rewrite.method,
                                        f"the {name} backend could not rewrite the follow-up ({exc})")
        return followup.standalone_question(conversation, llm, max_chars=max_chars)

    def ask_stream(self, question: str, top_k: int | None = None,
                   documents: Iterable[str] | None = None, backend: str | None = None) -> Iterator[AnswerEvent]:
        name = self.choose_backend(backend)
        spec = registry.spec(name)
        retriever = self._retriever  # the whole answer uses one index version
        t0 = time.perf_counter()
        clock = _Clock()
        prepared = self.prepare(question, top_k, documents, retriever, whole_documents=spec.generative)
        context = prepared.context
        clock.retrieve = _ms(t0)

        similarity = retriever.similarity
        verifier = Verifier(context, question, lambda claim, sources: similarity(claim, " ".join(sources)))
        usage = Usage()
        warnings: list[str] = []
        model = "none"  # no model is called when nothing retrieved is relevant
        used = name
        check: AnswerCheck | None = None
        reason: str | None = None

        if not prepared.relevant:
            best = max(context.relevance, default=0.0)
            reason = (f"nothing in the documents is close to the question (best similarity {best:.2f} < "
                      f"FOOTNOTE_MIN_RELEVANCE {self.settings.min_relevance:g})")
        elif not spec.generative:
            model = extractive.MODEL
            yield from self._verify_text(extractive.answer_text(context, self.settings.min_relevance),
                                         verifier, clock)
        else:
            try:
                llm = self._backend_factory(name)
                model = llm.model
                probe = self._probe(llm, prepared, clock)
                gate = (self._gate(llm, question, context, similarity, clock, probe)
                        if self.settings.answer_check else None)
                generation = yield from self._generate(llm, prepared, verifier, clock, gate)
                usage = Usage(prompt_tokens=generation.prompt_tokens,
                              completion_tokens=generation.completion_tokens)
                check = verifier.check or probe
            except _Refused as refused:
                check, reason = refused.check, refused.reason
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
                    used, model = registry.EXTRACTIVE, extractive.MODEL
                    yield from self._verify_text(
                        extractive.answer_text(context, self.settings.min_relevance), verifier, clock)

        answerable = bool(verifier.citations) and reason is None
        text = verifier.answer_text if answerable else self.settings.refusal_message
        if not answerable:
            reason = reason or self._why_refused(verifier)
            yield Delta(text)
        yield Done(Answer(
            answer=text,
            answerable=answerable,
            citations=verifier.citations if answerable else [],
            model=model,
            backend=used,
            usage=usage,
            timings_ms=Timings(retrieve=round(clock.retrieve, 2), generate=round(clock.generate, 2),
                               verify=round(clock.verify, 2), check=round(clock.check, 2), total=round(_ms(t0), 2)),
            verification=verifier.stats,
            warnings=warnings,
            refusal_reason=None if answerable else reason,
            check=check,
        ))

    def _probe(self, llm: LLMBackend, prepared: Prepared, clock: _Clock) -> AnswerCheck | None:
        """The model's hidden state at the end of the prompt, read by the answerable probe
        (service/llm/answerable_probe.py): below FOOTNOTE_ANSWERABLE_THRESHOLD the question is
        refused before anything is generated. None where the backend has no probe."""
        t = time.perf_counter()
        try:
            score = llm.answerability(prepared.messages())
        except (LLMBusy, LLMCrashed):
            raise
        except LLMError as exc:  # the answer goes on unprobed; generation will meet the same error if any
            log.warning("the answerable probe failed: %s", exc)
            score = None
        finally:
            clock.check += _ms(t)
        if score is None:
            return None
        threshold = self.settings.answerable_threshold
        check = AnswerCheck(score=round(score, 4), threshold=threshold, passed=score >= threshold,
                            judged=False, features={"probe": round(score, 4)})
        if not check.passed:
            sources = [s.text for s in prepared.context.sentences]
            raise _Refused(check, refusal_reason(prepared.question, sources))
        return check

    def _gate(self, llm: LLMBackend, question: str, context: Context,
              similarity: Callable[[str, str], float], clock: _Clock, probe: AnswerCheck | None) -> Gate:
        checker = AnswerChecker(llm, similarity, self.settings.answer_threshold,
                                all_signals=self.settings.answer_check_all_signals,
                                probe=probe.score if probe else None)

        def gate(kept: VerifiedClaim, conversation: list[ChatMessage], reply: str) -> AnswerCheck:
            t = time.perf_counter()
            # "He said that ..." next to the sentence naming him: the check reads them together
            sources = [s.text for s in context.read_with_neighbours(kept.sources)]
            check = checker.check(question, kept.claim, sources, kept.reattributed, conversation, reply)
            clock.check += _ms(t)
            if not check.passed:
                raise _Refused(check, refusal_reason(question, sources))
            return check

        return gate

    @staticmethod
    def _why_refused(verifier: Verifier) -> str:
        if verifier.stats.claims and verifier.stats.removed:
            return "no retrieved sentence supports what the model answered"
        return "the model found no answer in the closest sentences"

    # -- steps --------------------------------------------------------------

    def _generate(self, llm: LLMBackend, prepared: Prepared, verifier: Verifier,
                  clock: _Clock, gate: Gate | None = None) -> Iterator[AnswerEvent]:
        """Stream the model's answer, verifying and emitting each sentence once it is final.
        With an answer check, nothing is shown before the model has finished and the check has
        passed (answers are a sentence or two; the check asks the same model)."""
        messages = prepared.messages()
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
                if gate is not None:  # the check needs the model, which is busy until the answer ends
                    yield Progress()  # ...but a client that leaves meanwhile still stops it
                    continue
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
        yield from self._verify_claims(parse_answer(_strip_label(pending)), verifier, clock,
                                       gate and (lambda kept: gate(kept, messages, buffer.strip())))
        return generation or Generation(buffer, llm.model)

    def _verify_text(self, text: str, verifier: Verifier, clock: _Clock) -> Iterator[AnswerEvent]:
        yield from self._verify_claims(parse_answer(text), verifier, clock)

    def _verify_claims(self, claims: list[Claim], verifier: Verifier, clock: _Clock,
                       gate: Callable[[VerifiedClaim], AnswerCheck] | None = None) -> Iterator[AnswerEvent]:
        for claim in claims:
            t = time.perf_counter()
            kept = verifier.add(claim)
            clock.verify += _ms(t)
            if kept is None:
                continue
            if gate is not None and verifier.stats.kept == 1:
                verifier.check = gate(kept)  # the first claim carries the answer: check it before showing it
            for citation in kept.citations:
                yield Cited(citation)
            yield Delta((" " if verifier.stats.kept > 1 else "") + kept.text)


def _strip_label(text: str) -> str:
    """Small models sometimes begin with an "Answer:" label of their own (the prompt has none)."""
    stripped = text.lstrip()
    return stripped[len("Answer:"):].lstrip() if stripped.startswith("Answer:") else stripped


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
