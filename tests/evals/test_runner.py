"""The eval runner: the seed gold set end to end, injected backends, isolation, external sets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.answer.service import AnswerService
from service.evals.dataset import load_dataset
from service.evals.report import check_gate, gate_for, load_thresholds
from service.evals.runner import build_service, category_of, eval_data_dir, run_eval
from service.llm.base import Generation
from service.container import Container
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
GOLD = ROOT / "evals" / "seeds_gold.jsonl"
EXTERNAL = ROOT.parent / "shared" / "benchmarks" / "external-qa"
MULTILINGUAL = ROOT / "evals" / "multilingual"


@pytest.fixture(scope="module")
def gold() -> list[dict]:
    return load_dataset(GOLD)


@pytest.fixture(scope="module")
def extractive_service(seed_retriever, seed_settings) -> AnswerService:
    settings = seed_settings.model_copy(update={"llm": "extractive"})
    return Container(settings).answer_service(seed_retriever)


@pytest.fixture(scope="module")
def extractive_run(gold, extractive_service):
    return run_eval(gold, extractive_service, backend="extractive")


# ------------------------------------------------------------------ seed set, extractive


def test_seed_set_extractive_meets_thresholds(extractive_run) -> None:
    gate = gate_for(load_thresholds(), "extractive", "seeds_gold")
    assert gate and gate["min"], "evals/thresholds.toml has no extractive/seeds_gold gate"
    assert check_gate(extractive_run.summary, gate) == []


def test_seed_run_records_every_item(gold, extractive_run) -> None:
    s = extractive_run.summary
    assert s["n_items"] == len(gold) and len(extractive_run.records) == len(gold)
    assert s["n_answerable"] == sum(it["answerable"] for it in gold)
    assert extractive_run.backends == ["extractive"]
    assert set(s["by_category"]) == {it["category"] for it in gold}
    for rec, res, item in zip(extractive_run.records, extractive_run.results, gold, strict=True):
        assert rec["id"] == res.id == item["id"] and rec["question"] == item["question"]
        # Refusal is the answer object's `answerable is False`; a refusal's text is not scored.
        assert res.refused == (not rec["citations"])
        assert res.answer == ("" if res.refused else rec["answer"])
        assert res.citation_texts == [c["text"] for c in rec["citations"]]
        assert set(res.latency_ms) == {"retrieve", "generate", "verify", "check", "total"}
        assert res.latency_ms["total"] >= res.latency_ms["retrieve"] > 0
        assert len(res.retrieved_texts) == 10
        # No model ran: zero tokens, not an estimate.
        assert (res.prompt_tokens, res.completion_tokens, rec["tokens_estimated"]) == (0, 0, False)
        assert rec["passed"] == (not rec["reasons"])
    assert [f["id"] for f in s["failures"]] == [r["id"] for r in extractive_run.records if r["reasons"]]
    for stage in ("retrieve", "total"):
        assert s[f"latency_{stage}_ms_p95"] >= s[f"latency_{stage}_ms_p50"] > 0


def test_failures_say_where_the_point_was_lost(extractive_run) -> None:
    by_id = {r["id"]: r for r in extractive_run.records}
    for rec in by_id.values():
        if rec["answerable"] and rec["reasons"]:
            assert any("retrieved at rank" in w or "retrieval miss" in w for w in rec["why"])
            assert f"expected {rec['gold_answers'][0]!r}" in rec["why"]
        if rec["gold_rank"] is not None:
            assert rec["gold_evidence"]
            assert 1 <= rec["gold_rank"] <= 10


def test_multilingual_set_extractive_meets_thresholds(tmp_path: Path) -> None:
    """Six languages end to end: Chinese and Japanese sentences and keyword terms, accented and
    Cyrillic names, character-level scoring. Deterministic (no model)."""
    settings = Settings(docs_dir=ROOT / "seeds", data_dir=tmp_path / "data", llm="extractive")
    run = run_eval(load_dataset(MULTILINGUAL / "qa.jsonl"), build_service(settings, MULTILINGUAL / "docs"))
    gate = gate_for(load_thresholds(), "extractive", "multilingual")
    assert gate and gate["min"], "evals/thresholds.toml has no extractive/multilingual gate"
    assert check_gate(run.summary, gate) == []
    by_id = {r["id"]: r for r in run.records}
    assert by_id["ml-zh-3"]["citations"][0]["text"] == "八达岭长城位于北京市延庆区，是最著名的一段长城。"


def test_limit_takes_the_first_items(gold, extractive_service) -> None:
    run = run_eval(gold, extractive_service, limit=3)
    assert [r.id for r in run.results] == [it["id"] for it in gold[:3]]
    assert run.summary["n_items"] == 3


# ------------------------------------------------------------------ injected backend


class OracleModel:
    """A fake LLM that cites the gold evidence when it is in the context, else says NOT_FOUND."""

    name = "oracle"
    model = "oracle-1"

    def __init__(self, gold: list[dict], report_usage: bool) -> None:
        self.by_question = {it["question"]: it for it in gold}
        self.report_usage = report_usage
        self.calls = 0

    def _reply(self, messages) -> str:
        self.calls += 1
        text = "\n".join(m["content"] for m in messages)  # wherever the prompt puts them
        item = next(it for q, it in self.by_question.items() if q in messages[-1]["content"])
        if item["answerable"]:
            for line in text.splitlines():  # a context line: "[n] <sentence>" (format may vary)
                marker = re.match(r"\s*\[(\d+)\]", line)
                if marker and line.rstrip().endswith(item["evidence"][0]):
                    return f"{item['evidence'][0]} [{marker.group(1)}]"
        return "NOT_FOUND"

    def choice_probabilities(self, messages, options) -> dict[str, float]:  # the answer check: it is right
        return {"yes": 1.0, "no": 0.0}

    def answerability(self, messages) -> float | None:  # no probe
        return None

    def generate(self, messages, *, max_tokens, stop=None) -> Generation:  # pragma: no cover
        text = self._reply(messages)
        return Generation(text, self.model, 0, 0)

    def stream(self, messages, *, max_tokens, stop=None) -> Iterator[str | Generation]:
        text = self._reply(messages)
        yield text
        yield Generation(text, self.model, *((900, 30) if self.report_usage else (0, 0)))


@pytest.mark.parametrize("report_usage", [False, True])
def test_injected_backend_scores_and_counts_tokens(gold, seed_retriever, seed_settings,
                                                   report_usage) -> None:
    oracle = OracleModel(gold, report_usage)
    settings = seed_settings.model_copy(update={"llm": "openai"})
    service = AnswerService(seed_retriever, settings, lambda name: oracle)
    run = run_eval(gold if not report_usage else gold[::3], service)  # a third is enough here
    s = run.summary

    assert oracle.calls > 0 and "openai" in run.backends and "oracle-1" in run.models
    # The oracle refuses every unanswerable question and cites only gold evidence.
    assert s["refusal_accuracy"] == 1.0
    assert s["citation_precision"] == 1.0 and s["citation_recall_any"] == 1.0
    assert s["false_refusal_rate"] < 0.2  # refuses only when retrieval missed the evidence
    for rec in run.records:
        if rec["answerable"] and not rec["refused"]:
            assert rec["citations"][0]["text"] == rec["gold_evidence"][0]
            if report_usage:
                assert (rec["prompt_tokens"], rec["completion_tokens"]) == (900, 30)
                assert not rec["tokens_estimated"]
            else:  # the backend reported 0: estimated with tiktoken from prompt and answer
                assert rec["tokens_estimated"]
                assert rec["prompt_tokens"] > 100 and 0 < rec["completion_tokens"] < 100
    if report_usage:
        assert s["prompt_tokens_mean"] > 0 and not any(r["tokens_estimated"] for r in run.records)


# ------------------------------------------------------------------ data folders


def test_eval_data_dir_never_is_the_live_index_of_another_corpus(tmp_path: Path) -> None:
    settings = Settings(docs_dir=tmp_path / "live", data_dir=tmp_path / "data")
    assert eval_data_dir(settings, tmp_path / "live") == tmp_path / "data"
    a = eval_data_dir(settings, tmp_path / "a" / "docs")
    b = eval_data_dir(settings, tmp_path / "b" / "docs")
    assert a != b and a.parent == b.parent == tmp_path / "data" / "evals"
    assert eval_data_dir(settings, tmp_path / "a" / "docs") == a  # stable


def test_dataset_with_doc_ids_runs_in_its_own_index(tmp_path: Path, make_corpus) -> None:
    docs = make_corpus({
        "moon.txt": "The Moon orbits the Earth. Its orbit takes about 27 days.",
        "mars.txt": "Mars has two moons. They are called Phobos and Deimos.",
    })
    settings = Settings(docs_dir=tmp_path / "elsewhere", data_dir=tmp_path / "data", llm="extractive")
    service = build_service(settings, docs)
    assert not (tmp_path / "data" / "CURRENT").exists()  # the live index is untouched
    assert (eval_data_dir(settings, docs) / "CURRENT").exists()

    items = [
        {"id": "x:1", "question": "How long does the Moon's orbit take?", "answers": ["27 days"],
         "evidence": ["Its orbit takes about 27 days."], "answerable": True, "doc_ids": ["moon"]},
        {"id": "x:2", "question": "What are the moons of Mars called?", "answers": ["Phobos and Deimos"],
         "evidence": [], "evidence_derived": ["They are called Phobos and Deimos."],
         "answerable": True, "doc_ids": ["mars.txt"]},
    ]
    run = run_eval(items, service)
    assert [r["documents"] for r in run.records] == [["moon.txt"], ["mars.txt"]]
    for rec in run.records:  # retrieval and citations stay inside the item's documents
        assert {c["document"] for c in rec["citations"]} <= set(rec["documents"])
    assert run.results[1].gold_evidence == ["They are called Phobos and Deimos."]
    assert run.summary["recall_at_10"] == 1.0
    assert set(run.summary["by_category"]) == {"x/answerable"}

    with pytest.raises(ValueError, match="'venus' is not in the index"):
        run_eval([{**items[0], "doc_ids": ["venus"]}], service)
    whole = run_eval([{**items[0], "doc_ids": ["venus"]}], service, use_doc_ids=False)
    assert whole.records[0]["documents"] is None


def test_category_fallback() -> None:
    assert category_of({"id": "a", "category": "near-miss", "answerable": False}) == "near-miss"
    assert category_of({"id": "squad2:5a3", "answerable": False}) == "squad2/unanswerable"
    assert category_of({"id": "plain", "answerable": True}) == "answerable"


# ------------------------------------------------------------------ external set


@pytest.mark.skipif(not (EXTERNAL / "qa.jsonl").is_file(), reason="external-qa benchmark not present")
def test_external_set_runs_with_the_same_runner(tmp_path: Path) -> None:
    items = load_dataset(EXTERNAL / "qa.jsonl")
    # A spread over SQuAD, HotpotQA and the derived negatives, kept small (--limit in the CLI).
    sample = items[::8] + items[-1:]
    settings = Settings(docs_dir=ROOT / "seeds", data_dir=tmp_path / "data", llm="extractive")
    service = build_service(settings, EXTERNAL / "docs")
    run = run_eval(sample, service, limit=10)
    s = run.summary
    assert s["n_items"] == 10
    assert {r["category"] for r in run.records} == {
        "squad2/answerable", "squad2/unanswerable", "hotpotqa/answerable", "hotpotqa-neg/unanswerable"}
    assert not (tmp_path / "data" / "CURRENT").exists()
    for rec, item in zip(run.records, sample, strict=False):
        if item.get("doc_ids"):
            assert rec["documents"] == [f"{item['doc_ids'][0]}.txt"]
            assert {c["document"] for c in rec["citations"]} <= set(rec["documents"])
        else:
            assert rec["documents"] is None
        if item["answerable"]:  # SQuAD items score against evidence_derived
            assert rec["gold_evidence"]
    assert s["recall_at_10"] is not None and s["mrr"] is not None
    assert s["contains"] is not None and s["refusal_accuracy"] is not None
