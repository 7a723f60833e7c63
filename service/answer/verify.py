"""Verify claims against the context, attribute or remove them, and number the citations.

Claims arrive one at a time (so a stream can emit each verified sentence as soon as it is
final). For each claim:
  - drop cited ids that are not in the context (counted as invalid);
  - keep the citations if the cited sentences support the claim;
  - otherwise attribute the claim to the context sentence (or pair) that supports it best;
  - otherwise remove the claim.
Citations are numbered 1..k in order of first appearance in the kept text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from service.answer import support
from service.answer.claims import STOPS, Claim
from service.answer.context import Context
from service.answer.models import AnswerCheck, Citation, VerificationStats
from service.records import Sentence

# cosine(claim, sentences) -> float; lets a paraphrase count as support when facts match.
Similarity = Callable[[str, list[str]], float]
MIN_SIMILARITY = 0.65


@dataclass
class VerifiedClaim:
    text: str  # with final [n] markers
    citations: list[Citation]  # the citations this claim introduced (first appearances)
    claim: str = ""  # the text without markers
    sources: list[Sentence] = field(default_factory=list)  # every sentence it cites
    reattributed: bool = False  # the model cited something else; the verifier found these


@dataclass
class Verifier:
    context: Context
    question: str
    similarity: Similarity | None = None
    stats: VerificationStats = field(default_factory=VerificationStats)
    citations: list[Citation] = field(default_factory=list)
    model_refused: bool = False
    check: AnswerCheck | None = None  # the answer check of the first kept claim, when one ran
    _number_of: dict[str, int] = field(default_factory=dict)
    _texts: list[str] = field(default_factory=list)

    def _supports(self, claim: str, sentences: list[Sentence]) -> tuple[bool, float]:
        texts = [s.text for s in sentences]
        result = support.check(claim, texts, self.question)
        if result.supported:
            return True, result.overlap
        if result.missing_facts or result.source_overlap == 0 or self.similarity is None:
            return False, result.overlap
        score = self.similarity(claim, texts)
        return score >= MIN_SIMILARITY, result.overlap

    def _points_without_saying(self, claim: str, cited: list[Sentence]) -> bool:
        """The claim restates the question, and the sentences it cites say so in their own
        words (the question's words do not count): they are where its answer is."""
        return (support.restates_question(claim, self.question)
                and support.check(claim, [s.text for s in cited]).supported)

    def _attribute(self, claim: str) -> list[Sentence] | None:
        """The context sentence, or failing that pair, that best supports the claim."""
        scored = []
        for s in self.context.sentences:
            check = support.check(claim, [s.text], self.question)
            scored.append((check.overlap - 0.1 * len(check.missing_facts), s))
        scored.sort(key=lambda t: -t[0])
        for _, s in scored[:5]:
            ok, _ = self._supports(claim, [s])
            if ok:
                return [s]
        top = [s for _, s in scored[:4]]
        for i in range(len(top)):
            for j in range(i + 1, len(top)):
                pair = sorted([top[i], top[j]], key=lambda s: (s.document, s.sentence))
                if support.check(claim, [p.text for p in pair], self.question).supported:
                    return pair
        return None

    def add(self, claim: Claim) -> VerifiedClaim | None:
        """Verify one claim; the kept claim's text carries final citation numbers."""
        if claim.refusal:
            self.model_refused = True
            return None
        valid = []
        for n in claim.cited:
            sentence = self.context.by_id(n)
            if sentence is None:
                self.stats.invalid_ids += 1
            elif sentence not in valid:
                valid.append(sentence)
        if not claim.text and not valid:
            return None
        if valid and (not claim.text or self._points_without_saying(claim.text, valid)):
            # A bare "[2]", or the question said back ("The producers lifted the embargo [2]."
            # for "When did ...?"): the model pointed at its answer without saying it. Quote the
            # sentence itself, which the checks below then verify like any claim.
            claim = Claim(" ".join(s.text for s in valid), claim.cited)
            self.stats.quoted += 1
        self.stats.claims += 1
        ok = bool(valid) and self._supports(claim.text, valid)[0]
        if not ok and valid:
            repaired = _drop_invented_years(claim.text, valid)
            if repaired != claim.text and self._supports(repaired, valid)[0]:
                claim, ok = Claim(repaired, claim.cited), True
                self.stats.repaired += 1
        reattributed = False
        if not ok:
            attributed = self._attribute(claim.text)
            if attributed is None:
                self.stats.removed += 1
                return None
            valid = attributed
            self.stats.reattributed += 1
            reattributed = True
        self.stats.kept += 1
        new: list[Citation] = []
        numbers = []
        for s in valid:
            if s.key not in self._number_of:
                self._number_of[s.key] = len(self._number_of) + 1
                citation = Citation(n=self._number_of[s.key], document=s.document,
                                    sentence=s.sentence, start=s.start, end=s.end, text=s.text)
                self.citations.append(citation)
                new.append(citation)
            numbers.append(self._number_of[s.key])
        text = _with_markers(claim.text, numbers)
        self._texts.append(text)
        return VerifiedClaim(text, new, claim.text, list(valid), reattributed)

    @property
    def answer_text(self) -> str:
        return " ".join(self._texts)


_YEAR = re.compile(r",?\s*(?:in\s+)?\b(1[5-9]\d\d|20\d\d)\b")


def _drop_invented_years(text: str, sources: list[Sentence]) -> str:
    """Remove years the sources never mention ("September 4, 2021" when they say
    "September 4"): small models append them from habit. Nothing is ever added."""
    said = " ".join(s.text for s in sources)
    return _YEAR.sub(lambda m: m.group(0) if m.group(1) in said else "", text).strip()


def _with_markers(text: str, numbers: list[int]) -> str:
    """Put "[1][2]" at the end of the sentence: before a final full stop, after a closing
    quote or bracket (so a marker never lands inside quoted text)."""
    markers = "".join(f"[{n}]" for n in numbers)
    body = text.rstrip()
    if re.search(rf"[{STOPS}][\"'”’)\]」』]+$", body):
        return f"{body} {markers}"
    final = re.search(rf"[{STOPS}]+$", body)
    if final:
        return f"{body[: final.start()].rstrip()} {markers}{final.group(0)}"
    return f"{body} {markers}."
