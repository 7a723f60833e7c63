"""Sentence segmentation with exact character offsets.

syntok does the hard part (abbreviations such as "Mr." and "U.S.", decimals, ellipses,
quotes). Before it runs we cut the text into blocks at paragraph breaks, so a sentence never
spans two paragraphs, list items or headings. After it, two rules of our own:
  - sentence marks syntok does not know end a sentence: Chinese and Japanese "。！？", the
    Devanagari danda "।", Arabic "؟" and others (they are never abbreviations);
  - a "sentence" longer than MAX_SENTENCE_TOKENS (text with no sentence marks: a transcript, a
    run-on list) is cut at its last clause break or space below the limit. Otherwise it could
    never fit the prompt's budget, so nothing in it could be answered, and a citation of it
    would quote pages.
Offsets always index the original string.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from syntok import segmenter

from service.records import Sentence
from service.tokens import count_tokens

# Above every sentence of the benchmark corpora (their longest is 212), well inside the
# prompt's budget (FOOTNOTE_CONTEXT_TOKENS, 1200) and near the embedder's window (256 pieces).
MAX_SENTENCE_TOKENS = 250

# A line that starts a new block even without a blank line before it: bullets, numbered
# items, markdown headings, quotes and table rows.
_BLOCK_START = re.compile(r"[ \t]*(?:[-*+•]\s|\d{1,3}[.)]\s|#{1,6}\s|>|\|)")
# The opening line of a fenced code block: three or more backticks or tildes.
_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})")
# A line that ends with sentence-final punctuation (optionally closed by quotes/brackets).
_ENDS_SENTENCE = re.compile(r"[.!?…:;][\"'”’)\]]*[ \t]*$")


# A line ending in one of these words continues on the next line; it is not a title.
_CONTINUES = frozenset(
    "a an the and or but of in on at to for from with by as into that which who than "
    "is are was were be been has have had his her its their our my your".split()
)


def _is_title(line: str, next_line: str) -> bool:
    """A short line with no final punctuation above a much longer one is a title
    ("Pago Pago" over its article), not the first half of a hard-wrapped sentence."""
    line, following = line.strip(), next_line.strip()
    words = line.split()
    return (
        bool(following) and following[0].isupper() and not _ENDS_SENTENCE.search(line)
        and len(line) < 0.5 * len(following) and len(words) <= 12
        and not line.endswith((",", "-", "–")) and words[-1].lower() not in _CONTINUES
    )


def _fenced_lines(lines: list[str]) -> set[int]:
    """Indexes of the lines of fenced code blocks, fences included. A fence is closed by a line
    of the same character, at least as long, and nothing else; one never closed is not a fence
    (a stray ``` in prose must not turn the rest of a document into code)."""
    code: set[int] = set()
    # Per fence character, the shortest fence that found no closing line: a longer one after
    # it cannot find one either (its closer would have closed that one), so it is not looked
    # for again. That keeps a document of many unclosed fences linear.
    unclosed: dict[str, int] = {}
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening and len(opening.group(1)) < unclosed.get(opening.group(1)[0], 1 << 30):
            fence = opening.group(1)
            for j in range(i + 1, len(lines)):
                closing = lines[j].strip()
                if closing.startswith(fence) and not closing.strip(fence[0]):
                    code.update(range(i, j + 1))
                    i = j
                    break
            else:
                unclosed[fence[0]] = len(fence)
        i += 1
    return code


def _blocks(text: str) -> Iterator[tuple[int, int, bool]]:
    """Yield (start, end, is_code) spans of paragraphs: text between line breaks that end a thought.

    A newline ends a block when the next line is blank or starts a list item/heading, or the
    line itself ends with final punctuation or is a heading. A hard-wrapped line in the middle
    of a sentence stays in its block. Each line of a fenced code block (``` or ~~~, fences
    included) is a block of its own: code has no sentences, and prose rules cut it mid-command.
    """
    block_start: int | None = None
    pos = 0
    lines = text.splitlines(keepends=True)
    code = _fenced_lines(lines)
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        line_start, line_end = pos, pos + len(body)
        pos += len(line)
        if i in code:
            if block_start is not None:
                yield block_start, prev_end, False
                block_start = None
            if body.strip():
                yield line_start, line_end, True
            continue
        if not body.strip():
            if block_start is not None:
                yield block_start, prev_end, False
                block_start = None
            continue
        if block_start is not None and _BLOCK_START.match(body):
            yield block_start, prev_end, False
            block_start = None
        if block_start is None:
            block_start = line_start
        prev_end = line_end
        next_line = lines[i + 1] if i + 1 < len(lines) else ""
        heading = body.lstrip().startswith("#") or _is_title(body, next_line)
        if heading or _ENDS_SENTENCE.search(body) or not next_line.strip():
            yield block_start, prev_end, False
            block_start = None
    if block_start is not None:
        yield block_start, prev_end, False


# Sentence marks of scripts syntok does not segment ("？！" is one end). A mark that a closing
# quote or bracket follows ends no sentence: in 「行こう。」と彼は言った。 the quote goes on.
OTHER_STOPS = "。！？｡।॥؟۔։።။"
_UNMARKED_END = re.compile(f"[{OTHER_STOPS}]+")
_CLOSERS = "」』）〕】〉》”’\"')]"
# Where an over-long sentence may be cut, best first: after a clause mark, after a space.
_CLAUSE_BREAK = re.compile(r"[,;:，；：、—–]\s*|\s+-\s+")
_SPACE = re.compile(r"\s+")


def _split_unmarked_ends(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    for mark in _UNMARKED_END.finditer(text, start, end):
        if mark.end() < end and text[mark.end()] not in _CLOSERS and text[mark.end():end].strip():
            yield start, mark.end()
            start = mark.end()
    yield start, end


def _fits(piece: str) -> bool:
    # A token covers at least one UTF-8 byte, so most sentences need no counting.
    return len(piece.encode("utf-8")) <= MAX_SENTENCE_TOKENS or count_tokens(piece) <= MAX_SENTENCE_TOKENS


def _cut_over_long(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) pieces of at most MAX_SENTENCE_TOKENS each, cut where a reader would."""
    while True:
        # Only this window is ever counted, so a run-on text of megabytes costs linear time. At
        # 8 characters a token it is longer than the limit allows for any prose; a piece of
        # rarer text (a row of dashes) is cut at the window, still within the limit.
        window = min(end, start + 8 * MAX_SENTENCE_TOKENS)
        if window == end and _fits(text[start:end]):
            yield start, end
            return
        lo, hi = start + 1, window  # the longest prefix within the limit, by bisection
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _fits(text[start:mid]):
                lo = mid
            else:
                hi = mid - 1
        cut = lo
        half = start + (cut - start) // 2  # no piece of a few words when a break is further on
        for pattern in (_CLAUSE_BREAK, _SPACE):
            breaks = [m.end() for m in pattern.finditer(text, half, cut) if m.end() < cut]
            if breaks:
                cut = breaks[-1]
                break
        while cut > start + 1 and unicodedata.combining(text[cut]):
            cut -= 1  # never separate an accent or a vowel sign from its letter
        yield start, cut
        start = cut


def _sentences_in_block(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    for s, e in _syntok_sentences(text, start, end):
        for s2, e2 in _split_unmarked_ends(text, s, e):
            yield from _cut_over_long(text, s2, e2)


def _syntok_sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    block = text[start:end]
    for paragraph in segmenter.analyze(block):
        for sentence in paragraph:
            if not sentence:
                continue
            first, last = sentence[0], sentence[-1]
            s = start + first.offset
            e = start + last.offset + len(last.value)
            # syntok may normalise a token's value; never trust it past the block end.
            yield s, min(e, end)


def segment(document: str, text: str) -> list[Sentence]:
    """Split `text` into numbered sentences whose offsets slice back to their text."""
    spans: list[tuple[int, int]] = []
    for b_start, b_end, code in _blocks(text):
        pieces = _cut_over_long(text, b_start, b_end) if code else _sentences_in_block(text, b_start, b_end)
        for s, e in pieces:
            # Strip surrounding whitespace only; never alter the inside.
            while s < e and text[s].isspace():
                s += 1
            while e > s and text[e - 1].isspace():
                e -= 1
            if e <= s:
                continue
            if spans and s < spans[-1][1]:  # defensive: never overlap the previous sentence
                s = spans[-1][1]
                while s < e and text[s].isspace():
                    s += 1
                if e <= s:
                    continue
            spans.append((s, e))
    return [
        Sentence(document=document, sentence=i, start=s, end=e, text=text[s:e])
        for i, (s, e) in enumerate(spans, start=1)
    ]
