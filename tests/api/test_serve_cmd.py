"""`footnote serve`: starts on the configured address and prints a first question that works."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.cli.serve_cmd import example_question, first_steps
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_first_steps_shows_a_loopback_curl_line_and_the_key_header_only_when_needed():
    text = first_steps(Settings(host="0.0.0.0", api_keys=""), 8123, "Who?")
    assert "curl -s http://127.0.0.1:8123/v1/ask" in text and "Authorization" not in text
    assert "base_url=http://127.0.0.1:8123/v1" in text
    guarded = first_steps(Settings(host="::1", api_keys="s3cret-key"), 8000)
    assert "http://[::1]:8000/v1/ask" in guarded and 'Authorization: Bearer $FOOTNOTE_KEY' in guarded
    assert "s3cret" not in guarded  # the key itself is never printed


def test_the_example_question_names_something_in_the_corpus(seed_retriever):
    question = example_question(seed_retriever.index)
    name = question.removeprefix("What do the documents say about ").rstrip("?")
    assert name != question and name in seed_retriever.index.texts[sorted(seed_retriever.index.manifest)[0]]


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl to run the printed line")
def test_serve_prints_a_curl_line_that_gets_an_answer(seed_settings):
    env = {**os.environ, "FOOTNOTE_DOCS_DIR": str(seed_settings.docs_dir),
           "FOOTNOTE_DATA_DIR": str(seed_settings.data_dir), "FOOTNOTE_LLM": "extractive",
           "FOOTNOTE_API_KEYS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli.main", "serve", "--port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines, deadline = [], time.monotonic() + 60
        while not any(line.strip().startswith("curl ") for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            lines.append(proc.stdout.readline())
        curl = next(line.strip() for line in lines if line.strip().startswith("curl "))
        assert "127.0.0.1:" in curl
        out = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=30).stdout
        assert '"answerable":true' in out and '"citations":[{' in out
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
