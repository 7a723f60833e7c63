"""`footnote ask`: the answer (text or JSON), and every Footnote error as one line, exit 2."""

from __future__ import annotations

import json

import pytest

from tests.cli.support import run

QUESTION = "How many countries pledged to guarantee Ukraine's security?"




def test_json_answer_from_the_extractive_backend(seeded, capsys):
    code, out, err = run(capsys, "ask", QUESTION, "--backend", "extractive", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["answerable"] and answer["backend"] == "extractive" and answer["citations"]
    assert "26 countries" in answer["answer"]


def test_text_answer_lists_its_sources(seeded, capsys):
    code, out, _ = run(capsys, "ask", QUESTION, "--backend", "extractive")
    assert code == 0 and "Sources:" in out and "[1]" in out and "(extractive: extractive;" in out


@pytest.mark.parametrize("argv, message", [
    (["ask", "  "], "error: the question is empty"),
    (["ask", "oil " * 600], "FOOTNOTE_MAX_QUESTION_CHARS"),
    (["ask", "oil", "--top-k", "0"], "error: --top-k must be at least 1"),
    (["ask", QUESTION, "--backend", "extractive", "--document", "missing.txt"], "missing.txt"),
])
def test_errors_exit_2_with_one_line(seeded, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and err.startswith("error: ") and err.count("\n") == 1


def test_a_missing_corpus_is_an_error_not_a_trace(use_settings, tmp_path, capsys):
    use_settings(docs_dir=tmp_path / "nowhere", data_dir=tmp_path / "data")
    code, out, err = run(capsys, "ask", QUESTION, "--backend", "extractive")
    assert code == 2 and out == "" and err.startswith("error: corpus folder")


def test_the_backend_flag_is_the_operators_choice_whatever_the_allow_list(seeded, use_settings, capsys):
    # FOOTNOTE_LLM=openai, unconfigured, and only openai enabled: at the terminal the flag still binds.
    use_settings(llm="openai", allowed_backends="openai", openai_api_key="", openai_base_url="")
    code, out, err = run(capsys, "ask", QUESTION, "--backend", "extractive", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["backend"] == "extractive" and answer["answerable"] and answer["warnings"] == []
