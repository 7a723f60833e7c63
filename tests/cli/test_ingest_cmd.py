"""`footnote ingest`: summary lines, warnings, and readable errors (exit 2)."""

from __future__ import annotations

import re

import pytest

from tests.cli.support import run



def test_ingest_then_up_to_date(use_settings, make_corpus, tmp_path, capsys):
    docs = make_corpus({"a.txt": "Bees make honey. Wasps do not.", "b.md": "# Notes\n\nAnts farm aphids.\n"})
    use_settings(data_dir=tmp_path / "data")
    code, out, err = run(capsys, "ingest", "--docs", str(docs))
    assert code == 0, err
    assert re.match(r"indexed 2 documents, 4 sentences in [\d.]+ s \(added 2, changed 0, removed 0, "
                    r"unchanged 0, skipped 0; embedded 4\)$", out.strip()), out
    assert "embedding 4 sentences" in err  # progress goes to stderr

    code, out, err = run(capsys, "ingest", "--docs", str(docs))
    assert code == 0
    assert out.startswith("index is up to date: 2 documents, 4 sentences")

    code, out, _ = run(capsys, "search", "Who makes honey?", "--json", "--top-k", "1")
    assert code == 0 and '"Bees make honey."' in out


def test_docs_folder_from_settings_and_quiet_keeps_warnings(use_settings, make_corpus, tmp_path, capsys):
    docs = make_corpus({"ok.txt": "Owls hunt at night.", "bad.txt": b"\xff\xfe\x00\x00binary"})
    use_settings(data_dir=tmp_path / "data", docs_dir=docs)
    code, out, err = run(capsys, "ingest", "--quiet")
    assert code == 0
    assert "indexed 1 documents, 1 sentences" in out and "skipped 1" in out
    assert err.strip().splitlines() == [err.strip()]  # quiet: only the warning
    assert err.startswith("warning: skipped bad.txt")


def test_missing_corpus_folder_exits_2_with_a_hint(use_settings, tmp_path, capsys):
    use_settings(data_dir=tmp_path / "data")
    code, out, err = run(capsys, "ingest", "--docs", str(tmp_path / "nope"))
    assert code == 2 and out == ""
    assert err.startswith("error: corpus folder") and "--docs DIR" in err
    assert "Traceback" not in err


def test_empty_corpus_folder_exits_2(use_settings, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    use_settings(data_dir=tmp_path / "data")
    code, _, err = run(capsys, "ingest", "--docs", str(tmp_path / "empty"))
    assert code == 2 and "no .txt or .md files" in err


def test_busy_ingest_exits_2(use_settings, make_corpus, tmp_path, capsys):
    from service.index import store

    docs = make_corpus({"a.txt": "Bees make honey."})
    use_settings(data_dir=tmp_path / "data")
    with store.ingest_lock(tmp_path / "data"):
        code, _, err = run(capsys, "ingest", "--docs", str(docs))
    assert code == 2 and "another `footnote ingest` is running" in err
    assert not (tmp_path / "data" / "CURRENT").exists()


def test_a_full_disk_exits_2_with_a_clear_message(use_settings, make_corpus, tmp_path, capsys, monkeypatch):
    import errno

    from service.index import store

    def no_space(*args, **kwargs):  # noqa: ANN002, ANN003
        raise OSError(errno.ENOSPC, "No space left on device")

    docs = make_corpus({"a.txt": "Bees make honey."})
    use_settings(data_dir=tmp_path / "data")
    monkeypatch.setattr(store.np, "save", no_space)
    code, out, err = run(capsys, "ingest", "--docs", str(docs))
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: could not write the new index") and "No space left" in err
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(("tmp-", "index-"))]


def test_a_document_over_the_size_limit_is_skipped_with_a_warning(use_settings, make_corpus, tmp_path, capsys):
    docs = make_corpus({"a.txt": "Bees make honey.", "big.txt": "Ants farm aphids. " * 100})
    use_settings(data_dir=tmp_path / "data", max_document_bytes=1000)
    code, out, err = run(capsys, "ingest", "--docs", str(docs), "--quiet")
    assert code == 0 and "indexed 1 documents" in out and "skipped 1" in out
    assert err.startswith("warning: skipped big.txt: 1,800 bytes is over the per-document limit of 1,000 bytes")
