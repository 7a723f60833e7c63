"""The gold QA sets are well-formed and grounded in their documents."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest

from service.evals.dataset import (
    CATEGORIES,
    evidence_of,
    load_dataset,
    load_docs,
    validate_item,
)

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
SEED_DOC = SEEDS / "000_f586ed492cfdf968.txt"
GOLD = ROOT / "evals" / "seeds_gold.jsonl"

# Minimum number of items per category in the seed gold set.
MIN_PER_CATEGORY = {
    "single-fact": 12,
    "multi-sentence": 5,
    "paraphrase": 6,
    "near-miss": 4,
    "false-premise": 3,
    "injection": 1,
}


def _external_dir() -> Path | None:
    for base in (ROOT / "shared", ROOT.parent / "shared"):
        d = base / "benchmarks" / "external-qa"
        if (d / "qa.jsonl").is_file() and (d / "docs").is_dir():
            return d
    return None


@pytest.fixture(scope="module")
def gold() -> list[dict]:
    return load_dataset(GOLD)


@pytest.fixture(scope="module")
def seed_text() -> str:
    return SEED_DOC.read_text(encoding="utf-8")


# ------------------------------------------------------------------ seed gold set


def test_size_and_unique_ids(gold: list[dict]) -> None:
    assert len(gold) >= 40
    ids = [it["id"] for it in gold]
    dupes = [i for i, n in collections.Counter(ids).items() if n > 1]
    assert not dupes, f"duplicate ids: {dupes}"


def test_every_item_validates(gold: list[dict]) -> None:
    docs = load_docs(SEEDS)
    assert list(dict.fromkeys(docs.values())) == [SEED_DOC.read_text(encoding="utf-8")]
    bad = {it.get("id"): p for it in gold if (p := validate_item(it, docs, require_category=True))}
    assert not bad, json.dumps(bad, indent=1, ensure_ascii=False)


def test_required_fields_and_types(gold: list[dict]) -> None:
    for it in gold:
        assert isinstance(it["id"], str) and it["id"].startswith("seed-")
        assert isinstance(it["question"], str) and it["question"].strip()
        assert isinstance(it["answers"], list)
        assert all(isinstance(a, str) and a.strip() for a in it["answers"])
        assert isinstance(it["evidence"], list)
        assert all(isinstance(e, str) for e in it["evidence"])
        assert isinstance(it["answerable"], bool)
        assert it["category"] in CATEGORIES, it["id"]


def test_evidence_is_verbatim(gold: list[dict], seed_text: str) -> None:
    for it in gold:
        for ev in it["evidence"]:
            assert ev in seed_text, f"{it['id']}: {ev!r}"


def test_answerable_items_have_answers_and_evidence(gold: list[dict]) -> None:
    for it in gold:
        if it["answerable"]:
            assert it["answers"] and it["evidence"], it["id"]
        else:
            assert it["answers"] == [] and it["evidence"] == [], it["id"]


def test_canonical_answer_in_evidence(gold: list[dict]) -> None:
    from service.evals.metrics import normalize_answer

    for it in [x for x in gold if x["answerable"]]:
        canonical = f" {normalize_answer(it['answers'][0])} "
        one = any(canonical in f" {normalize_answer(ev)} " for ev in it["evidence"])
        if it["category"] in ("multi-sentence", "paraphrase"):
            one = one or canonical in f" {normalize_answer(' '.join(it['evidence']))} "
        assert one, f"{it['id']}: {it['answers'][0]!r} not in its evidence"


def test_multi_sentence_items_cite_two_sentences(gold: list[dict]) -> None:
    for it in gold:
        if it["category"] == "multi-sentence":
            assert len(set(it["evidence"])) >= 2, it["id"]


def test_evidence_is_whole_sentences(gold: list[dict], seed_text: str) -> None:
    """Each evidence string is exactly one sentence as the project's segmenter cuts it."""
    segment = pytest.importorskip("service.ingest.segment").segment
    sentences = {s.text for s in segment(SEED_DOC.name, seed_text)}
    for it in gold:
        for ev in it["evidence"]:
            assert ev in sentences, f"{it['id']}: not a whole sentence: {ev!r}"


def test_category_counts(gold: list[dict]) -> None:
    counts = collections.Counter(it["category"] for it in gold)
    for cat, n in MIN_PER_CATEGORY.items():
        assert counts[cat] >= n, f"{cat}: {counts[cat]} < {n}"
    assert sum(not it["answerable"] for it in gold) >= 10


def test_memory_bait_questions_are_really_unanswerable(gold: list[dict], seed_text: str) -> None:
    """Known answers to the 'from memory' questions must not be in the document."""
    memory_answers = ["Sofia", "Starmer", "Merz", "Scholz", "2022", "Rutte", "Guterres", "Argentina"]
    for word in memory_answers:
        assert word not in seed_text, word
    # The only numbers are 26, 35 and the day "September 4": no year, no troop count.
    assert set(re.findall(r"\d+", seed_text)) == {"26", "35", "4"}


# ------------------------------------------------------------------ validator


def test_validator_reports_problems(seed_text: str) -> None:
    docs = {"d": seed_text}
    good = {
        "id": "x",
        "question": "How many countries pledged?",
        "answers": ["26"],
        "evidence": [seed_text.split("\n")[0].split(". ")[0] + "."],
        "answerable": True,
        "category": "single-fact",
    }
    assert validate_item(good, docs) == []
    assert any("not found verbatim" in p for p in validate_item({**good, "evidence": ["Made up."]}, docs))
    assert any("not found in the evidence" in p for p in validate_item({**good, "answers": ["35"]}, docs))
    assert any("without evidence" in p for p in validate_item({**good, "evidence": []}, docs))
    assert any("contradicts" in p for p in validate_item({**good, "category": "near-miss"}, docs))
    assert any("unknown doc id" in p for p in validate_item({**good, "doc_ids": ["nope"]}, docs))
    assert any("missing field" in p for p in validate_item({k: v for k, v in good.items() if k != "answerable"}, docs))
    bad_un = {**good, "answerable": False, "category": "unanswerable"}
    assert "unanswerable item with answers" in validate_item(bad_un, docs)


def test_load_dataset_rejects_bad_json(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text('{"id": "a"}\n\n{not json}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=":3:"):
        load_dataset(p)


# ------------------------------------------------------------------ external set


@pytest.mark.skipif(_external_dir() is None, reason="external-qa benchmark not present")
def test_external_set_validates() -> None:
    d = _external_dir()
    assert d is not None
    items = load_dataset(d / "qa.jsonl")
    docs = load_docs(d / "docs")
    assert len(items) >= 40
    ids = [it["id"] for it in items]
    assert len(ids) == len(set(ids))
    bad = {it.get("id"): p for it in items if (p := validate_item(it, docs))}
    assert not bad, json.dumps(bad, indent=1, ensure_ascii=False)
    answerable = [it for it in items if it["answerable"]]
    assert answerable and all(evidence_of(it) for it in answerable)
    assert sum(not it["answerable"] for it in items) >= 10
