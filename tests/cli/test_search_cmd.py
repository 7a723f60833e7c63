"""`footnote search`: JSON schema, text output, restriction and readable errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.support import run

SEED_DOC_ID = "000_f586ed492cfdf968.txt"
SEED_TEXT = (Path(__file__).resolve().parents[2] / "seeds" / SEED_DOC_ID).read_text(encoding="utf-8")
QUESTION = "How many countries pledged to guarantee Ukraine's security?"




def test_json_output_schema(seeded, capsys):
    code, out, err = run(capsys, "search", QUESTION, "--json", "--top-k", "3")
    assert code == 0, err
    payload = json.loads(out)
    assert list(payload) == ["results"]
    results = payload["results"]
    assert len(results) == 3
    for r in results:
        assert list(r) == ["document", "sentence", "start", "end", "score", "text"]
        assert isinstance(r["document"], str) and isinstance(r["text"], str)
        assert all(isinstance(r[k], int) for k in ("sentence", "start", "end"))
        assert isinstance(r["score"], float) and 0.0 <= r["score"] <= 1.0
        assert r["document"] == SEED_DOC_ID
        assert SEED_TEXT[r["start"] : r["end"]] == r["text"]
    assert "26 countries had pledged" in results[0]["text"] and results[0]["sentence"] == 1
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def test_default_top_k_comes_from_settings(seeded, use_settings, capsys):
    use_settings(top_k=5)
    code, out, _ = run(capsys, "search", "Ukraine", "--json")
    assert code == 0 and len(json.loads(out)["results"]) == 5


def test_text_output_lists_ranked_sentences_with_spans(seeded, capsys):
    code, out, _ = run(capsys, "search", QUESTION, "--top-k", "2")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(f" 1. {SEED_DOC_ID} #1 [0:")
    assert "26 countries had pledged" in lines[1]
    assert lines[2].startswith(" 2. ")


def test_document_restriction(seeded, capsys):
    code, out, _ = run(capsys, "search", "oil", "--json", "--document", SEED_DOC_ID)
    assert code == 0
    assert {r["document"] for r in json.loads(out)["results"]} == {SEED_DOC_ID}

    code, out, err = run(capsys, "search", "oil", "--document", "missing.txt")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "missing.txt" in err


def test_no_index_is_a_readable_error(use_settings, tmp_path, capsys):
    use_settings(data_dir=tmp_path / "nothing-here")
    code, out, err = run(capsys, "search", "anything", "--json")
    assert code == 2 and out == ""
    assert "no index" in err and "footnote ingest" in err
    assert "Traceback" not in err


def test_damaged_index_is_a_readable_error(use_settings, make_corpus, tmp_path, capsys):
    from service.index import store
    from service.ingest.pipeline import ingest

    docs = make_corpus({"a.txt": "Bees make honey in summer."})
    ingest(docs, tmp_path / "data")
    (store.current_folder(tmp_path / "data") / "embeddings.npy").write_bytes(b"junk")
    use_settings(data_dir=tmp_path / "data")
    code, out, err = run(capsys, "search", "honey")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "footnote ingest" in err


@pytest.mark.parametrize("argv", [["search", "   "], ["search", "oil", "--top-k", "-1"], ["search", "oil", "--top-k", "0"],
                                  ["search", "oil " * 600]])  # longer than FOOTNOTE_MAX_QUESTION_CHARS
def test_invalid_arguments_exit_2(seeded, capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and "error" in err
