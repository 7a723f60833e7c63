"""The CI quality gate: the seed gold set answered by a real model, replayed from a recording.

The model's HTTP traffic was recorded with pytest-recording against llama.cpp's
OpenAI-compatible server running the embedded model (tests/cassettes/README.md says how to
re-record). Retrieval, verification, attribution and refusal run for real on every replay, so
a change to any of them is measured against the gate in evals/thresholds.toml
([gate.openai.seeds_gold]). A changed prompt misses the cassette: re-record, then compare.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.answer.service import AnswerService
from service.evals.dataset import load_dataset
from service.evals.report import check_gate, gate_for, load_thresholds
from service.evals.runner import run_eval
from service.llm.openai_backend import OpenAIBackend

ROOT = Path(__file__).resolve().parents[2]
RECORDED_SERVER = "http://127.0.0.1:8765/v1"
RECORDED_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"


SQUAD2_DEV = ROOT.parent / "shared" / "benchmarks" / "squad2-dev"
MULTILINGUAL = ROOT / "evals" / "multilingual"
SQUAD2_ITEMS = 80  # the first 80 questions (20 paragraphs, 40 answerable and 40 adversarial unanswerable)


def recorded_settings(settings):
    return settings.model_copy(update={
        "llm": "openai", "openai_base_url": RECORDED_SERVER, "llm_model": RECORDED_MODEL,
        "llm_max_retries": 0, "llm_fallback": False, "llm_timeout_s": 600,
    })


@pytest.fixture(scope="module")
def recorded_run(seed_retriever, seed_settings, recorder):
    settings = recorded_settings(seed_settings)
    backend = OpenAIBackend(settings)
    service = AnswerService(seed_retriever, settings, lambda name: backend)
    with recorder.use_cassette("seeds_gold.yaml"):
        return run_eval(load_dataset(ROOT / "evals" / "seeds_gold.jsonl"), service, backend="openai")


@pytest.fixture(scope="module")
def recorded_squad2_run(recorder, tmp_path_factory):
    """The adversarial refusal set (../shared/benchmarks/squad2-dev), first 80 questions."""
    if not (SQUAD2_DEV / "qa.jsonl").is_file():
        pytest.skip(f"{SQUAD2_DEV} is not there (it sits beside the checkout in CI)")
    from service.container import Container
    from service.settings import Settings

    # Answered in strict mode: the answer check on (FOOTNOTE_ANSWER_CHECK=true, the default threshold).
    settings = recorded_settings(Settings(docs_dir=SQUAD2_DEV / "docs", data_dir=tmp_path_factory.mktemp("squad2"),
                                          answer_check=True))
    container = Container(settings)
    backend = OpenAIBackend(settings)
    service = AnswerService(container.ready_retriever(quiet=True), settings, lambda name: backend)
    items = load_dataset(SQUAD2_DEV / "qa.jsonl")[:SQUAD2_ITEMS]
    with recorder.use_cassette("squad2_dev_80.yaml"):
        return run_eval(items, service, backend="openai")


@pytest.fixture(scope="module")
def recorded_multilingual_run(recorder, tmp_path_factory):
    """evals/multilingual: six languages, asked of the whole corpus; the model's own words in
    French, Russian, Chinese or Japanese go through the verifier and the scorer."""
    from service.container import Container
    from service.settings import Settings

    settings = recorded_settings(Settings(docs_dir=MULTILINGUAL / "docs", data_dir=tmp_path_factory.mktemp("ml")))
    backend = OpenAIBackend(settings)
    service = AnswerService(Container(settings).ready_retriever(quiet=True), settings, lambda name: backend)
    with recorder.use_cassette("multilingual.yaml"):
        return run_eval(load_dataset(MULTILINGUAL / "qa.jsonl"), service, backend="openai")


@pytest.fixture(scope="module")
def recorder(vcr_config, vcr_cassette_dir, record_mode):
    """pytest-recording's settings (and --record-mode), for a cassette shared by the module."""
    import vcr as vcrpy

    if record_mode == "rewrite":  # pytest-recording's own mode: start the cassettes afresh
        for name in ("seeds_gold.yaml", "squad2_dev_80.yaml", "multilingual.yaml"):
            (Path(vcr_cassette_dir) / name).unlink(missing_ok=True)
        record_mode = "new_episodes"
    return vcrpy.VCR(cassette_library_dir=vcr_cassette_dir, record_mode=record_mode, **vcr_config)


def test_every_answer_came_from_the_recorded_model(recorded_run):
    assert recorded_run.backends == ["openai"]
    assert RECORDED_MODEL in recorded_run.models


def test_recorded_model_meets_the_quality_gate(recorded_run):
    gate = gate_for(load_thresholds(), "openai", "seeds_gold")
    assert gate and gate["min"], "evals/thresholds.toml has no [gate.openai.seeds_gold] section"
    failures = check_gate(recorded_run.summary, gate)
    assert failures == [], "\n".join(failures)


def test_recorded_model_meets_the_refusal_gate_on_adversarial_questions(recorded_squad2_run):
    assert recorded_squad2_run.backends == ["openai"]
    assert recorded_squad2_run.summary["n_items"] == SQUAD2_ITEMS
    gate = gate_for(load_thresholds(), "openai", "squad2-dev")
    assert gate and gate["min"], "evals/thresholds.toml has no [gate.openai.squad2-dev] section"
    failures = check_gate(recorded_squad2_run.summary, gate)
    assert failures == [], "\n".join(failures)


def test_recorded_model_meets_the_gate_in_six_languages(recorded_multilingual_run):
    assert recorded_multilingual_run.backends == ["openai"]
    gate = gate_for(load_thresholds(), "openai", "multilingual")
    assert gate and gate["min"], "evals/thresholds.toml has no [gate.openai.multilingual] section"
    failures = check_gate(recorded_multilingual_run.summary, gate)
    assert failures == [], "\n".join(failures)
