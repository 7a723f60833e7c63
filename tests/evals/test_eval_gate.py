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


@pytest.fixture(scope="module")
def recorded_run(seed_retriever, seed_settings, recorder):
    settings = seed_settings.model_copy(update={
        "llm": "openai", "openai_base_url": RECORDED_SERVER, "llm_model": RECORDED_MODEL,
        "llm_max_retries": 0, "llm_fallback": False, "llm_timeout_s": 600,
    })
    backend = OpenAIBackend(settings)
    service = AnswerService(seed_retriever, settings, lambda name: backend)
    with recorder.use_cassette("seeds_gold.yaml"):
        return run_eval(load_dataset(ROOT / "evals" / "seeds_gold.jsonl"), service, backend="openai")


@pytest.fixture(scope="module")
def recorder(vcr_config, vcr_cassette_dir, record_mode):
    """pytest-recording's settings (and --record-mode), for a cassette shared by the module."""
    import vcr as vcrpy

    if record_mode == "rewrite":  # pytest-recording's own mode: start the cassette afresh
        (Path(vcr_cassette_dir) / "seeds_gold.yaml").unlink(missing_ok=True)
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
