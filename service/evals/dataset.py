"""Loading and validating gold QA sets (JSON Lines).

Record format (one JSON object per line)::

    {"id": str, "question": str, "answers": [canonical, *variants], "evidence": [sentence, ...],
     "answerable": bool, "category": str (optional), "doc_ids": [str] (optional), ...}

* `evidence` holds source sentences copied verbatim from the documents. External sets that
  have no gold evidence leave it empty and put derived sentences in `evidence_derived`.
* `doc_ids` name the documents a question is asked against; an id maps to `<docs>/<id>` or
  `<docs>/<id>.txt`. Missing or empty `doc_ids` means the whole corpus.
* Extra keys (notes, provenance) are allowed.

`validate_item` returns a list of problems (empty = valid) so a test can report all of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service.evals.metrics import normalize_answer

__all__ = [
    "CATEGORIES",
    "ANSWERABLE_CATEGORIES",
    "UNANSWERABLE_CATEGORIES",
    "MULTI_SPAN_CATEGORIES",
    "evidence_of",
    "load_dataset",
    "load_docs",
    "validate_item",
]

ANSWERABLE_CATEGORIES = frozenset({"single-fact", "multi-sentence", "paraphrase"})
UNANSWERABLE_CATEGORIES = frozenset({"near-miss", "unanswerable", "false-premise", "injection"})
CATEGORIES = ANSWERABLE_CATEGORIES | UNANSWERABLE_CATEGORIES
# Categories whose canonical answer may only appear in the concatenated evidence.
MULTI_SPAN_CATEGORIES = frozenset({"multi-sentence", "paraphrase"})
# Answers that need not occur in the evidence text (comparison questions).
_YES_NO = frozenset({"yes", "no"})

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "question": str,
    "answers": list,
    "evidence": list,
    "answerable": bool,
}


def load_dataset(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON Lines file; blank lines are skipped, bad lines raise ValueError."""
    items: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: invalid JSON: {e}") from e
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object")
            items.append(obj)
    return items


def load_docs(docs_dir: str | Path, suffixes: tuple[str, ...] = (".txt", ".md")) -> dict[str, str]:
    """Map document ids to texts; each file is reachable by its name and by its stem."""
    docs: dict[str, str] = {}
    for p in sorted(Path(docs_dir).iterdir()):
        if p.is_file() and p.suffix in suffixes:
            text = p.read_text(encoding="utf-8")
            docs[p.name] = text
            docs.setdefault(p.stem, text)
    return docs


def evidence_of(item: Mapping[str, Any]) -> list[str]:
    """Gold evidence, falling back to `evidence_derived` when `evidence` is empty."""
    return list(item.get("evidence") or item.get("evidence_derived") or [])


def _docs_for(item: Mapping[str, Any], doc_text_by_id: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(texts to search, problems) for the item's doc_ids (all docs when none given)."""
    ids = item.get("doc_ids") or []
    if not ids:
        return list(dict.fromkeys(doc_text_by_id.values())), []
    texts, problems = [], []
    for d in ids:
        text = doc_text_by_id.get(d, doc_text_by_id.get(f"{d}.txt"))
        if text is None:
            problems.append(f"unknown doc id {d!r}")
        else:
            texts.append(text)
    return texts, problems


def validate_item(
    item: Mapping[str, Any],
    doc_text_by_id: Mapping[str, str],
    *,
    require_category: bool = False,
) -> list[str]:
    """Check one record against the format and the documents; return problems found."""
    problems: list[str] = []
    for key, typ in _REQUIRED.items():
        if key not in item:
            problems.append(f"missing field {key!r}")
        elif not isinstance(item[key], typ):
            problems.append(f"{key!r} should be {getattr(typ, '__name__', typ)}")
    if problems:
        return problems
    if not item["id"].strip():
        problems.append("empty id")
    if not item["question"].strip():
        problems.append("empty question")
    for key in ("answers", "evidence", "evidence_derived", "doc_ids"):
        val = item.get(key, [])
        if not isinstance(val, list) or not all(isinstance(s, str) and s.strip() for s in val):
            problems.append(f"{key!r} should be a list of non-empty strings")
    if problems:
        return problems

    category = item.get("category")
    if category is None:
        if require_category:
            problems.append("missing field 'category'")
    elif category not in CATEGORIES:
        problems.append(f"unknown category {category!r}")
    elif item["answerable"] != (category in ANSWERABLE_CATEGORIES):
        problems.append(f"answerable={item['answerable']} contradicts category {category!r}")

    texts, doc_problems = _docs_for(item, doc_text_by_id)
    problems += doc_problems
    evidence = evidence_of(item)
    for ev in evidence:
        if not any(ev in t for t in texts):
            problems.append(f"evidence not found verbatim in its document(s): {ev[:80]!r}")
        if ev != ev.strip():
            problems.append(f"evidence has surrounding whitespace: {ev[:80]!r}")

    if item["answerable"]:
        if not item["answers"]:
            problems.append("answerable item without answers")
        if not evidence:
            problems.append("answerable item without evidence")
        if item["answers"] and evidence:
            canonical = normalize_answer(item["answers"][0])
            if not canonical:
                problems.append("canonical answer is empty after normalisation")
            elif canonical not in _YES_NO:
                in_one = any(_has(ev, canonical) for ev in evidence)
                # External sets carry no category; multi-hop items may span sentences.
                multi_ok = category is None or category in MULTI_SPAN_CATEGORIES
                if not in_one and not (multi_ok and _has(" ".join(evidence), canonical)):
                    problems.append(
                        f"canonical answer {item['answers'][0]!r} not found in the evidence"
                    )
    else:
        if item["answers"]:
            problems.append("unanswerable item with answers")
        if item["evidence"]:
            problems.append("unanswerable item with evidence")
    return problems


def _has(text: str, normalized_answer: str) -> bool:
    return f" {normalized_answer} " in f" {normalize_answer(text)} "
