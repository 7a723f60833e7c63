"""Does a sentence support a claim? Cheap lexical checks that catch what small models invent.

A claim is supported by a set of source sentences when
  1. every number and every capitalised name in the claim occurs in them (fuzzily, so
     "Italy" matches "Italian" and "Ukraine" matches "Ukrainian"), and
  2. most of its content words occur in them or in the question (a restated question is not
     a new fact; the facts are checked by 1).
This is what catches "Sofia" for the capital of Bulgaria, "Joe Biden", or an invented year.

Words are Unicode words ("Élysée", "Боровицком"), compared without case or accents, so the
model's "Elysee" matches the source's "Élysée". Chinese and Japanese are written without
spaces between words, so each of their characters counts as a word; they have no capital
letters either, so there only numbers are facts and the rest is the overlap of 2.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache

import regex

# Scripts written without spaces between words: each character is a word (here, and to the
# eval scorer). BM25 needs the same as plain ranges: service/index/keyword.py.
UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}ー"
WORD = regex.compile(
    rf"[{UNSPACED}]"
    r"|\d+(?:[.,]\d+)*"
    rf"|(?:(?![{UNSPACED}])\p{{L}})(?:(?![{UNSPACED}])[\p{{L}}\p{{M}}'’\-])*"
)
# The same words in ASCII text, found by `re` in less than half the time.
_ASCII_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+(?:[.,]\d+)*")


def word_tokens(text: str) -> list[str]:
    """The words and numbers of a text, as WORD finds them."""
    return _ASCII_WORD.findall(text) if text.isascii() else WORD.findall(text)


NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "first": "1",
}
STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as into about over after before
    than then so such that this these those there here it its it's is are was were be been being
    has have had do does did will would shall should can could may might must not no nor also
    he she they them his her their we you i me my our your who whom whose which what when where
    why how all any both each few more most other some only own same very just said says say
    according while meanwhile however mr mrs ms dr yes""".split()
)
MIN_OVERLAP = 0.6  # share of the claim's content words found in the sources or question


@lru_cache(maxsize=1 << 16)  # a verification folds the same few hundred words many times
def _fold(token: str) -> str:
    """Without case, and without the accents of Latin, Greek and Cyrillic letters ("Élysée" ->
    "elysee"); other scripts' marks are parts of their letters and stay."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", token.casefold()):
        if unicodedata.combining(ch) and out and out[-1] < "\u0530":
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _norm(token: str) -> str:
    token = _fold(token).replace("’", "'")
    if token.endswith("'s"):
        token = token[:-2]
    return token.strip("'-")


def _number(token: str) -> str:
    return unicodedata.normalize("NFKC", token).replace(",", "")  # "３７７６" is 3776


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer, installed with the BM25 retriever

    return Stemmer.Stemmer("english")


def _stem(token: str) -> str:
    return _stemmer().stemWord(token)


def _fuzzy_equal(a: str, b: str) -> bool:
    """Same word up to inflection or demonym: shared prefix of all but the last 2-3 letters."""
    if a == b:
        return True
    if len(a) < 4 or len(b) < 4:
        return False
    need = max(4, min(len(a), len(b)) - 2)
    return a[:need] == b[:need]


@dataclass(frozen=True)
class Facts:
    numbers: frozenset[str]
    names: frozenset[str]


def facts(claim: str, common: AbstractSet[str] = frozenset()) -> Facts:
    """Numbers and capitalised words (not stop words) of a claim. The first word is usually
    capitalised for grammar alone, but a name there is still a name, unless it is one of
    `common`: words seen written in lower case ("Many pharmacists ..." for "many pharmacists")."""
    numbers, names = set(), set()
    tokens = word_tokens(claim)
    for i, tok in enumerate(tokens):
        low = _norm(tok)
        if tok[0].isdigit():
            numbers.add(_number(tok))
        elif low in NUMBER_WORDS:
            numbers.add(NUMBER_WORDS[low])
        elif tok[0].isupper() and low not in STOPWORDS and (i > 0 or (len(tok) > 1 and low not in common)):
            names.add(low)
    return Facts(frozenset(numbers), frozenset(names))


def question_facts(question: str) -> Facts:
    """The facts a question asks about. Its first word is left out: in most languages that is
    the question word ("Wer", "Кто", "¿Cuántas"), capitalised for grammar, not a name."""
    return facts(question, common={_norm(t) for t in word_tokens(question)[:1]})


def _lower_case_words(texts: list[str]) -> set[str]:
    return {_norm(t) for text in texts for t in word_tokens(text) if t[0].islower()}


def _source_vocab(texts: list[str]) -> tuple[set[str], set[str]]:
    words, numbers = set(), set()
    for text in texts:
        for tok in word_tokens(text):
            low = _norm(tok)
            if tok[0].isdigit():
                numbers.add(_number(tok))
            elif low in NUMBER_WORDS:
                numbers.add(NUMBER_WORDS[low])
            words.add(low)
    return words, numbers


def content_words(text: str) -> list[str]:
    return [w for w in (_norm(t) for t in word_tokens(text)) if w and w not in STOPWORDS and not w[0].isdigit()]


@dataclass(frozen=True)
class Support:
    supported: bool
    missing_facts: tuple[str, ...]
    overlap: float  # share of content words found
    source_overlap: int  # content words found in the sources themselves


def check(claim: str, sources: list[str], question: str = "") -> Support:
    if not sources:
        return Support(False, (), 0.0, 0)
    words, numbers = _source_vocab(sources)
    f = facts(claim, _lower_case_words([*sources, question]))
    missing = [n for n in f.numbers if n not in numbers]
    missing += [n for n in f.names if not any(_fuzzy_equal(n, w) for w in words)]

    source_stems = {_stem(w) for w in words}
    question_stems = {_stem(w) for w in content_words(question)}
    claim_words = content_words(claim)
    if not claim_words:
        return Support(not missing and bool(f.numbers), tuple(missing), 1.0, 0)
    in_source = sum(1 for w in claim_words if _stem(w) in source_stems or any(_fuzzy_equal(w, s) for s in words))
    in_either = sum(
        1 for w in claim_words
        if _stem(w) in source_stems or _stem(w) in question_stems or any(_fuzzy_equal(w, s) for s in words)
    )
    overlap = in_either / len(claim_words)
    ok = not missing and overlap >= MIN_OVERLAP and (in_source > 0 or bool(f.numbers))
    return Support(ok, tuple(sorted(missing)), overlap, in_source)


def found_in(words: list[str], sources: list[str]) -> int:
    """How many of `words` occur in the sources (by stem, or fuzzily: "Italy" ~ "Italian")."""
    vocab, _ = _source_vocab(sources)
    stems = {_stem(w) for w in vocab}
    return sum(1 for w in words if _stem(w) in stems or any(_fuzzy_equal(w, s) for s in vocab))


# A yes/no question is answered by restating it ("Did the council approve it?" -> "The council
# approved it."), and a choice question by repeating one of its options.
_YES_NO = re.compile(r"^\s*(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|may|might|must)\b",
                     re.IGNORECASE)
_CHOICE = re.compile(r"\bor\b", re.IGNORECASE)


def restates_question(claim: str, question: str) -> bool:
    """True when the claim only says back what the question asked ("When did the producers lift
    the embargo?" -> "The producers lifted the embargo."): every content word and number of it
    comes from the question. Such a claim answers nothing, though its citation may."""
    if not question or _YES_NO.match(question) or _CHOICE.search(question):
        return False
    said = content_words(claim)
    if not said or re.match(r"\s*(?:yes|no)\b", claim, re.IGNORECASE):
        return False
    if not facts(claim).numbers <= facts(question).numbers:
        return False
    stems = {_stem(w) for w in content_words(question)}  # exact stems: "Rhin" is not "Rhine"
    return all(_stem(w) in stems for w in said)
