"""Split a model's answer into claims (sentences) and read their [n] citation markers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from service.ingest.segment import OTHER_STOPS, segment

# [3], [1, 2], [1][2], [1-2]; the ids are context numbers, not final citation numbers.
MARKER = re.compile(r"\s*\[(\d+(?:\s*(?:,|-|–|and)\s*\d+)*)\]")
LEADING_MARKERS = re.compile(r"^(?:\s*\[\d+(?:\s*(?:,|-|–|and)\s*\d+)*\])+")

# What a model says when the context lacks the answer: our marker, and the usual phrasings.
# Only statements about the sources count: "Macron did not specify the number" is an answer
# (to "Did Macron give the number of soldiers?"), "the sentences do not specify it" is not.
_SOURCE = r"(?:sentences?|texts?|documents?|context|passages?|information|sources?)"
REFUSAL = re.compile(
    r"\bNOT[ _]FOUND\b"
    rf"|\b{_SOURCE}\b[^.]*?\b(?:do|does|did) not (?:contain|mention|say|state|specify|provide|include|answer)\b"
    rf"|\bnot (?:mentioned|specified|stated|provided|given|available)(?: in the {_SOURCE})?\s*[.!]?$"
    r"|\bno (?:information|mention)\b"
    r"|\bcannot (?:answer|be answered|find|determine)\b|\bcan't (?:answer|find|determine)\b"
    r"|\bunable to (?:answer|find|determine)\b|\bdon't (?:know|have)\b",
    re.IGNORECASE,
)


@dataclass
class Claim:
    text: str  # without markers, stripped
    cited: list[int] = field(default_factory=list)  # context ids as the model wrote them
    refusal: bool = False


def _ids(group: str) -> list[int]:
    ids: list[int] = []
    for part in re.split(r"\s*(?:,|and)\s*", group):
        bounds = re.split(r"\s*[-–]\s*", part.strip())
        if len(bounds) == 2 and all(b.isdigit() for b in bounds):
            lo, hi = int(bounds[0]), int(bounds[1])
            ids.extend(range(lo, hi + 1) if 0 < hi - lo < 20 else [lo, hi])
        elif part.strip().isdigit():
            ids.append(int(part))
    return ids


def parse_claim(raw: str) -> Claim:
    cited: list[int] = []
    for match in MARKER.finditer(raw):
        for n in _ids(match.group(1)):
            if n not in cited:
                cited.append(n)
    text = MARKER.sub("", raw).strip()
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)  # "war [1]." left "war ." behind
    # A question is not a claim: small models sometimes echo or invent one.
    refusal = bool(REFUSAL.search(text))
    if text.endswith(("?", "？")):
        return Claim(text="", cited=[], refusal=refusal)
    return Claim(text=text, cited=cited, refusal=refusal)


def split_sentences(text: str) -> list[str]:
    """Sentences of an answer, with markers that follow a full stop kept on their sentence."""
    pieces = [s.text for s in segment("answer", text)]
    merged: list[str] = []
    for piece in pieces:
        lead = LEADING_MARKERS.match(piece)
        if lead and merged:
            merged[-1] += lead.group(0)
            piece = piece[lead.end():].strip()
        if piece and (MARKER.sub("", piece).strip() or not merged):
            merged.append(piece)
        elif piece:
            merged[-1] += " " + piece
    return merged


def parse_answer(text: str) -> list[Claim]:
    """All claims of a finished answer, in order. Empty claims are dropped."""
    claims = [parse_claim(s) for s in split_sentences(text.strip())]
    return [c for c in claims if c.text or c.cited]


# With the other scripts' full stops the segmenter knows: a Chinese answer ends "…延庆区[1]。".
STOPS = ".!?…" + OTHER_STOPS
TERMINAL = re.compile(rf"[{STOPS}][\"'”’)\]」』]*$")
# "… [2]." : a claim closed the way the prompt asks, its marker and then its full stop.
CLOSED = re.compile(MARKER.pattern + rf"\s*[{STOPS}][\"'”’)」』]*\s*$")


def complete_prefix(text: str) -> tuple[list[str], str]:
    """For streaming: (finished sentences, the unfinished rest) of a growing answer.

    A sentence that closes with its marker and then its full stop ("… [2].") is final at once:
    the model's next token is the end of the answer or the next sentence, and waiting for it
    would hold the answer back by one decoding step. (A marker the model might add after that
    full stop would then be read as a claim of its own; no recorded reply has one.) Any other
    last sentence may still grow (more words, or a marker after its full stop), so it counts as
    finished only when real words of the next one have started.
    """
    sentences = split_sentences(text)
    if sentences and CLOSED.search(text):
        return sentences, ""
    if len(sentences) < 2:
        return [], text
    last = sentences[-1]
    cut = text.rfind(last)
    if cut < 0 or not MARKER.sub("", last).strip() or not TERMINAL.search(MARKER.sub("", sentences[-2]).rstrip()):
        return [], text
    return sentences[:-1], text[cut:]
