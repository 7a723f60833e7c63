"""Pure evaluation metrics for Footnote runs (no I/O).

A runner records one `ItemResult` per gold question and calls `summarize(items)`.

Conventions
-----------
* Answer metrics are SQuAD-style: `normalize_answer` lower-cases, strips punctuation, the
  articles a/an/the and extra whitespace. Chinese and Japanese characters count as tokens
  each (MLQA's mixed segmentation), since those scripts put no spaces between words.
  `exact_match`/`token_f1` take the best score over all acceptable golds; the `*_strict`
  variants score against the canonical gold (`golds[0]`) only. With no golds (an unanswerable
  question) they follow SQuAD 2.0: the only correct prediction is the empty one.
* `contains` is the metric that suits long generated answers: the normalised canonical answer
  must appear in the normalised prediction *as a whole-token sequence* ("26" is not found in
  "260").
* Citation metrics are ALCE-style at sentence level: citations and gold evidence are matched
  as whole sentences after whitespace normalisation (case and punctuation are kept: a
  citation is an exact source sentence). Refused items are excluded (not scored 0); items
  without gold evidence are excluded from recall. A metric with nothing to average over is
  `None`, not 0.
"""

from __future__ import annotations

import collections
import math
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import regex

from service.answer.support import UNSPACED

__all__ = [
    "ItemResult",
    "K_VALUES",
    "Supports",
    "citation_precision",
    "citation_recall_any",
    "contains",
    "contains_any",
    "default_supports",
    "evidence_recall",
    "exact_match",
    "exact_match_strict",
    "false_refusal_rate",
    "failure_reasons",
    "mean_recall_at_k",
    "mean_reciprocal_rank",
    "mrr",
    "normalize_answer",
    "normalize_ws",
    "percentile",
    "recall_at_k",
    "refusal_accuracy",
    "summarize",
    "token_f1",
    "token_f1_strict",
]

K_VALUES: tuple[int, ...] = (1, 3, 5, 10)

# Failure reasons reported by `summarize`.
WRONG_ANSWER = "wrong answer"
MISSING_CITATION = "missing citation"
FALSE_REFUSAL = "false refusal"
ANSWERED_UNANSWERABLE = "answered unanswerable"

Supports = Callable[[str, str], bool]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
# ASCII punctuation as SQuAD strips it, and the full-width marks of Chinese and Japanese.
_PUNCT = frozenset(string.punctuation) | frozenset("。、，．！？：；「」『』（）《》〈〉【】・～")
_UNSPACED = regex.compile(rf"([{UNSPACED}])")


# --------------------------------------------------------------------------- answers


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lower-case, drop punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _UNSPACED.sub(r" \1 ", s)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _golds_or_empty(golds: Sequence[str]) -> list[str]:
    # SQuAD 2.0: an unanswerable question has the single gold answer "".
    return list(golds) if golds else [""]


def _f1_one(pred: str, gold: str) -> float:
    pred_toks = normalize_answer(pred).split()
    gold_toks = normalize_answer(gold).split()
    if not pred_toks or not gold_toks:
        return float(pred_toks == gold_toks)
    common = collections.Counter(pred_toks) & collections.Counter(gold_toks)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_toks)
    recall = same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def exact_match(pred: str, golds: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold, else 0.0."""
    p = normalize_answer(pred)
    return float(any(p == normalize_answer(g) for g in _golds_or_empty(golds)))


def token_f1(pred: str, golds: Sequence[str]) -> float:
    """Best SQuAD token-overlap F1 of the prediction against any gold."""
    return max(_f1_one(pred, g) for g in _golds_or_empty(golds))


def exact_match_strict(pred: str, golds: Sequence[str]) -> float:
    """`exact_match` against the canonical gold only."""
    return exact_match(pred, list(golds[:1]))


def token_f1_strict(pred: str, golds: Sequence[str]) -> float:
    """`token_f1` against the canonical gold only."""
    return token_f1(pred, list(golds[:1]))


def contains(pred: str, canonical: str) -> bool:
    """True if the normalised `canonical` occurs as a token sequence in the normalised `pred`."""
    c = normalize_answer(canonical)
    if not c:
        return False
    return f" {c} " in f" {normalize_answer(pred)} "


def contains_any(pred: str, golds: Sequence[str]) -> bool:
    """Lenient `contains`: any acceptable gold occurs in the prediction."""
    return any(contains(pred, g) for g in golds)


# --------------------------------------------------------------------------- items


@dataclass
class ItemResult:
    """What a runner records for one gold question."""

    id: str
    category: str
    answerable: bool
    refused: bool
    answer: str = ""
    citation_texts: list[str] = field(default_factory=list)
    gold_answers: list[str] = field(default_factory=list)
    gold_evidence: list[str] = field(default_factory=list)
    # The ranked sentences retrieval returned (best first); None if not recorded.
    retrieved_texts: list[str] | None = None
    # Stage name -> milliseconds, e.g. {"retrieve": 12.0, "generate": 840.0, "total": 861.5}.
    latency_ms: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ItemResult:
        """Build from a record dict, ignoring keys that are not fields."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def normalize_ws(s: str) -> str:
    """Collapse all whitespace runs to one space and strip the ends."""
    return " ".join(s.split())


def _dedup(texts: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for t in texts:
        n = normalize_ws(t)
        if n and n not in seen:
            seen.add(n)
            out.append(n)
    return out


def default_supports(citation_text: str, answer_text: str) -> bool:
    """A citation supports the answer if the normalised answer string occurs in it."""
    return contains(citation_text, answer_text)


def _answered_answerable(items: Iterable[ItemResult]) -> list[ItemResult]:
    return [it for it in items if it.answerable and not it.refused]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


# --------------------------------------------------------------------------- citations


def citation_recall_any(items: Iterable[ItemResult]) -> float | None:
    """Share of answered answerable items (with gold evidence) citing >= 1 gold sentence."""
    scored = [it for it in _answered_answerable(items) if it.gold_evidence]
    hits = sum(
        1 for it in scored if set(_dedup(it.citation_texts)) & set(_dedup(it.gold_evidence))
    )
    return _ratio(hits, len(scored))


def evidence_recall(items: Iterable[ItemResult]) -> float | None:
    """Micro share of gold evidence sentences cited, over answered answerable items."""
    found = total = 0
    for it in _answered_answerable(items):
        gold = _dedup(it.gold_evidence)
        cited = set(_dedup(it.citation_texts))
        total += len(gold)
        found += sum(1 for g in gold if g in cited)
    return _ratio(found, total)


def _citation_ok(citation: str, it: ItemResult, supports: Supports) -> bool:
    if citation in set(_dedup(it.gold_evidence)):
        return True
    canonical = it.gold_answers[0] if it.gold_answers else ""
    return bool(canonical) and supports(citation, canonical)


def citation_precision(
    items: Iterable[ItemResult], supports: Supports = default_supports
) -> float | None:
    """Micro share of citations that are gold evidence or support the canonical gold answer.

    Computed over answered answerable items; duplicate citations within an item count once.
    `supports(citation_text, answer_text)` receives the item's canonical gold answer.
    """
    good = total = 0
    for it in _answered_answerable(items):
        for c in _dedup(it.citation_texts):
            total += 1
            good += _citation_ok(c, it, supports)
    return _ratio(good, total)


# --------------------------------------------------------------------------- refusals


def refusal_accuracy(items: Iterable[ItemResult]) -> float | None:
    """Share of unanswerable items the system refused."""
    un = [it for it in items if not it.answerable]
    return _ratio(sum(it.refused for it in un), len(un))


def false_refusal_rate(items: Iterable[ItemResult]) -> float | None:
    """Share of answerable items the system refused."""
    ans = [it for it in items if it.answerable]
    return _ratio(sum(it.refused for it in ans), len(ans))


# --------------------------------------------------------------------------- retrieval


def recall_at_k(ranked_sentence_texts: Sequence[str], gold_texts: Sequence[str], k: int) -> float:
    """Share of the gold sentences found among the first `k` ranked sentences."""
    if k < 1:
        raise ValueError("k must be >= 1")
    gold = _dedup(gold_texts)
    if not gold:
        raise ValueError("recall@k is undefined without gold sentences")
    top = {normalize_ws(t) for t in ranked_sentence_texts[:k]}
    return sum(1 for g in gold if g in top) / len(gold)


def mrr(ranked_sentence_texts: Sequence[str], gold_texts: Sequence[str]) -> float:
    """Reciprocal rank of the first gold sentence in the ranking (0.0 if absent)."""
    gold = set(_dedup(gold_texts))
    if not gold:
        raise ValueError("MRR is undefined without gold sentences")
    for rank, t in enumerate(ranked_sentence_texts, start=1):
        if normalize_ws(t) in gold:
            return 1.0 / rank
    return 0.0


def _retrieval_items(items: Iterable[ItemResult]) -> list[ItemResult]:
    # Retrieval is judged whether or not the generator later refused.
    return [it for it in items if it.retrieved_texts is not None and _dedup(it.gold_evidence)]


def mean_recall_at_k(items: Iterable[ItemResult], k: int) -> float | None:
    scored = _retrieval_items(items)
    return _ratio(
        sum(recall_at_k(it.retrieved_texts or [], it.gold_evidence, k) for it in scored),
        len(scored),
    )


def mean_reciprocal_rank(items: Iterable[ItemResult]) -> float | None:
    scored = _retrieval_items(items)
    return _ratio(sum(mrr(it.retrieved_texts or [], it.gold_evidence) for it in scored), len(scored))


# --------------------------------------------------------------------------- latency


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile with linear interpolation (numpy's default method)."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= p <= 100:
        raise ValueError("p must be within [0, 100]")
    xs = sorted(float(v) for v in values)
    pos = (len(xs) - 1) * p / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# --------------------------------------------------------------------------- summary


def failure_reasons(it: ItemResult) -> list[str]:
    """Why an item counts as failed (empty list = passed)."""
    if not it.answerable:
        return [] if it.refused else [ANSWERED_UNANSWERABLE]
    if it.refused:
        return [FALSE_REFUSAL]
    reasons: list[str] = []
    if not contains_any(it.answer, it.gold_answers):
        reasons.append(WRONG_ANSWER)
    cited = set(_dedup(it.citation_texts))
    gold = set(_dedup(it.gold_evidence))
    if not cited or (gold and not cited & gold):
        reasons.append(MISSING_CITATION)
    return reasons


def _mean(xs: Sequence[float]) -> float | None:
    return _ratio(sum(xs), len(xs))


def _metrics(items: Sequence[ItemResult], supports: Supports) -> dict[str, Any]:
    answerable = [it for it in items if it.answerable]
    answered = _answered_answerable(items)
    # Answer quality over all answerable items: a false refusal answers "" and scores 0.
    preds = [("" if it.refused else it.answer, it.gold_answers) for it in answerable]
    out: dict[str, Any] = {
        "n_items": float(len(items)),
        "n_answerable": float(len(answerable)),
        "n_unanswerable": float(len(items) - len(answerable)),
        "n_answered_answerable": float(len(answered)),
        "exact_match": _mean([exact_match(p, g) for p, g in preds]),
        "token_f1": _mean([token_f1(p, g) for p, g in preds]),
        "contains": _mean([float(contains_any(p, g)) for p, g in preds]),
        "exact_match_strict": _mean([exact_match_strict(p, g) for p, g in preds]),
        "token_f1_strict": _mean([token_f1_strict(p, g) for p, g in preds]),
        "contains_strict": _mean([float(bool(g) and contains(p, g[0])) for p, g in preds]),
        # One number for the whole set: answerable -> right answer, unanswerable -> refused.
        "accuracy": _mean(
            [
                float(it.refused if not it.answerable else (not it.refused and contains_any(it.answer, it.gold_answers)))
                for it in items
            ]
        ),
        "pass_rate": _mean([float(not failure_reasons(it)) for it in items]),
        "citation_recall_any": citation_recall_any(items),
        "evidence_recall": evidence_recall(items),
        "citation_precision": citation_precision(items, supports),
        "refusal_accuracy": refusal_accuracy(items),
        "false_refusal_rate": false_refusal_rate(items),
        "mrr": mean_reciprocal_rank(items),
    }
    for k in K_VALUES:
        out[f"recall_at_{k}"] = mean_recall_at_k(items, k)
    stages = sorted({s for it in items for s in it.latency_ms})
    for stage in stages:
        vals = [it.latency_ms[stage] for it in items if stage in it.latency_ms]
        out[f"latency_{stage}_ms_p50"] = percentile(vals, 50)
        out[f"latency_{stage}_ms_p95"] = percentile(vals, 95)
    for name in ("prompt_tokens", "completion_tokens"):
        vals = [getattr(it, name) for it in items if getattr(it, name) is not None]
        out[f"{name}_mean"] = _mean(vals)
        out[f"{name}_total"] = float(sum(vals)) if vals else None
    return out


def summarize(items: Sequence[ItemResult], supports: Supports = default_supports) -> dict[str, Any]:
    """All metrics for a run.

    Returns a flat dict of metric name -> float (None when nothing to average over), plus
    `by_category` ({category: same flat metrics}) and `failures` (one dict per failed item:
    id, category, answer, reasons).
    """
    items = list(items)
    out = _metrics(items, supports)
    by_cat: dict[str, list[ItemResult]] = collections.defaultdict(list)
    for it in items:
        by_cat[it.category].append(it)
    out["by_category"] = {cat: _metrics(its, supports) for cat, its in sorted(by_cat.items())}
    out["failures"] = [
        {"id": it.id, "category": it.category, "answer": it.answer, "reasons": reasons}
        for it in items
        if (reasons := failure_reasons(it))
    ]
    return out
