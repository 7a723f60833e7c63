"""Ingest: incremental updates, bad files, damaged indexes, locking and crash safety."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from service.index import store
from service.index.loader import open_retriever
from service.index.store import IndexCorrupt, IngestBusy
from service.ingest import pipeline
from service.ingest.corpus import CorpusError
from service.ingest.pipeline import ingest
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

THREE = {
    "alpha.txt": "Alpaca wool is warm and soft. Farmers in Peru shear alpacas every spring.",
    "beta.md": "# Beta\n\nThe lighthouse keeper climbed 120 steps each night.\nHe lit the lamp at dusk.\n",
    "gamma/notes.txt": "Volcanoes release sulfur dioxide. Lava cools into basalt rock. Ash travels far.",
}


def count_sentences(files: dict[str, str]) -> dict[str, int]:
    from service.ingest.segment import segment

    return {doc: len(segment(doc, text)) for doc, text in files.items()}


def search_docs(data_dir: Path, question: str, k: int = 20) -> list:
    return open_retriever(Settings(data_dir=data_dir)).retrieve(question, k)


@pytest.fixture()
def built(make_corpus, tmp_path):
    """A three-file corpus, ingested once: (docs, data, first report)."""
    docs = make_corpus(THREE)
    data = tmp_path / "data"
    return docs, data, ingest(docs, data)


# -- incremental ingest ----------------------------------------------------------------------


def test_first_ingest_embeds_everything(built):
    _, data, report = built
    counts = count_sentences(THREE)
    assert sorted(report.added) == sorted(THREE)
    assert report.changed == report.removed == report.skipped == []
    assert report.embedded == report.sentences == sum(counts.values())
    assert report.documents == 3 and not report.up_to_date
    index = store.load(data)
    assert {d: e.count for d, e in index.manifest.items()} == counts


def test_changing_one_file_reembeds_only_that_file(built, monkeypatch):
    docs, data, _ = built
    before = store.load(data)
    new_beta = "# Beta\n\nThe lighthouse was automated in 1990.\nNobody climbs the steps now. Gulls nest there.\n"
    (docs / "beta.md").write_text(new_beta, encoding="utf-8")

    embedded_texts: list[str] = []
    from service.index import embedding

    real = embedding.MiniLMEncoder.encode

    def spy(self, texts, *args, **kwargs):
        embedded_texts.extend(texts)
        return real(self, texts, *args, **kwargs)

    monkeypatch.setattr(embedding.MiniLMEncoder, "encode", spy)
    report = ingest(docs, data)

    assert report.changed == ["beta.md"]
    assert report.added == report.removed == []
    assert report.unchanged == 2
    assert report.embedded == count_sentences({"beta.md": new_beta})["beta.md"] == 4
    assert all(t in new_beta for t in embedded_texts) and len(embedded_texts) == 4

    after = store.load(data)
    for doc in ("alpha.txt", "gamma/notes.txt"):  # unchanged rows are reused as they were
        old, new = before.manifest[doc], after.manifest[doc]
        np.testing.assert_array_equal(
            before.embeddings[old.first : old.first + old.count],
            after.embeddings[new.first : new.first + new.count],
        )
        assert before.sentences_of(doc) == after.sentences_of(doc)
    top = search_docs(data, "When was the lighthouse automated?", 1)[0].sentence
    assert (top.document, top.text) == ("beta.md", "The lighthouse was automated in 1990.")
    assert after.folder != before.folder and not before.folder.exists()  # old version removed


def test_unchanged_corpus_takes_the_fast_path(built, monkeypatch):
    docs, data, first = built
    live = store.current_folder(data)

    def must_not_load(*args, **kwargs):
        raise AssertionError("the fast path must not load the index or embed")

    monkeypatch.setattr(pipeline.store, "load", must_not_load)
    monkeypatch.setattr(pipeline, "segment", must_not_load)
    report = ingest(docs, data)
    assert report.up_to_date
    assert report.embedded == 0 and report.added == report.changed == report.removed == []
    assert (report.documents, report.sentences) == (3, first.sentences)

    # Touching a file (new mtime, same bytes) is still "up to date": the hash decides.
    path = docs / "alpha.txt"
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert ingest(docs, data).up_to_date
    assert store.current_folder(data) == live


def test_same_size_edit_is_detected(built):
    docs, data, _ = built
    text = THREE["alpha.txt"].replace("Peru", "Cusc")  # same length, new content
    (docs / "alpha.txt").write_text(text, encoding="utf-8")
    report = ingest(docs, data)
    assert report.changed == ["alpha.txt"] and report.embedded == 2


def test_added_and_removed_files(built):
    docs, data, first = built
    (docs / "delta.txt").write_text("Penguins huddle together to survive the winter.", encoding="utf-8")
    report = ingest(docs, data)
    assert report.added == ["delta.txt"] and report.embedded == 1 and report.unchanged == 3
    assert search_docs(data, "How do penguins survive winter?", 1)[0].sentence.document == "delta.txt"

    (docs / "alpha.txt").unlink()
    report = ingest(docs, data)
    assert report.removed == ["alpha.txt"] and report.embedded == 0
    assert report.documents == 3
    assert report.sentences == first.sentences - 2 + 1
    hits = search_docs(data, "Alpaca wool from Peru")
    assert hits and all(h.sentence.document != "alpha.txt" for h in hits)
    assert all("Alpaca" not in h.sentence.text for h in hits)
    from service.index.hybrid import UnknownDocuments

    with pytest.raises(UnknownDocuments):
        open_retriever(Settings(data_dir=data)).retrieve("wool", 3, documents=["alpha.txt"])


# -- bad files and bad folders ---------------------------------------------------------------


def test_bad_files_are_skipped_with_a_warning_naming_them(make_corpus, tmp_path):
    docs = make_corpus({
        "good.txt": "Copper conducts electricity well. Silver conducts it better.",
        "latin1.txt": "Caf\xe9 au lait costs two euros.".encode("latin-1"),
        "image.md": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
        "empty.txt": b"",
        "blank.md": b"  \n\n\t \n",
        "ignored.pdf": b"%PDF-1.4",
    })
    messages: list[str] = []
    report = ingest(docs, tmp_path / "data", messages.append)
    assert report.added == ["good.txt"] and report.documents == 1 and report.sentences == 2
    warnings = [m for m in messages if m.startswith("warning")]
    for name, why in [("latin1.txt", "UTF-8"), ("image.md", "binary"), ("empty.txt", "empty"),
                      ("blank.md", "empty")]:
        matching = [w for w in warnings if name in w]
        assert len(matching) == 1 and why in matching[0], (name, warnings)
        assert any(name in reason for reason in report.skipped)
    assert len(report.skipped) == 4 and not any("ignored.pdf" in m for m in messages)
    assert search_docs(tmp_path / "data", "Which metal conducts best?", 1)[0].sentence.document == "good.txt"


def test_only_bad_files_is_a_corpus_error(make_corpus, tmp_path):
    docs = make_corpus({"a.txt": b"\xff\xfe\xfa", "b.txt": b""})
    with pytest.raises(CorpusError, match="no readable documents") as err:
        ingest(docs, tmp_path / "data")
    assert "a.txt" in str(err.value) and "b.txt" in str(err.value)
    assert not (tmp_path / "data" / "CURRENT").exists()


@pytest.mark.parametrize("case", ["missing", "empty", "no-text-files", "a-file"])
def test_unusable_corpus_folder_raises_corpus_error_with_a_hint(tmp_path, case):
    docs = tmp_path / "docs"
    if case == "empty":
        docs.mkdir()
    elif case == "no-text-files":
        docs.mkdir()
        (docs / "report.pdf").write_bytes(b"%PDF")
        (docs / ".hidden.txt").write_text("Hidden files are skipped.")
    elif case == "a-file":
        docs.write_text("not a folder")
    with pytest.raises(CorpusError) as err:
        ingest(docs, tmp_path / "data")
    message = str(err.value)
    assert str(docs) in message
    assert "--docs" in message or "folder" in message


# -- damaged indexes -------------------------------------------------------------------------


def damage(data: Path, how: str) -> None:
    folder = store.current_folder(data)
    if how == "garbage-embeddings":
        (folder / "embeddings.npy").write_bytes(b"this is not a numpy file")
    elif how == "truncated-embeddings":
        raw = (folder / "embeddings.npy").read_bytes()
        (folder / "embeddings.npy").write_bytes(raw[: len(raw) // 2])
    elif how == "garbage-meta":
        (folder / "meta.json").write_text("{ not json")
    elif how == "meta-not-an-object":
        (folder / "meta.json").write_text("[]")
    elif how == "truncated-sentences":
        raw = (folder / "sentences.json").read_bytes()
        (folder / "sentences.json").write_bytes(raw[:-5])
    elif how.startswith("same-size-"):  # 200 bytes overwritten in place: size unchanged
        name = {"same-size-embeddings": "embeddings.npy", "same-size-texts": "texts.json",
                "same-size-bm25": next(p.relative_to(folder).as_posix() for p in sorted((folder / "bm25").iterdir())
                                       if p.stat().st_size > 400)}[how]
        with open(folder / name, "r+b") as handle:
            handle.seek(handle.seek(0, 2) - 200)
            handle.write(b"\x00" * 200)
    elif how == "ff-embeddings":  # every vector byte 0xFF (NaN), header intact
        path = folder / "embeddings.npy"
        raw = path.read_bytes()
        header = len(raw) - store.load(data).embeddings.nbytes
        path.write_bytes(raw[:header] + b"\xff" * (len(raw) - header))
    elif how == "bit-rot":  # changed bytes, same size, and the mtime put back: only a checksum sees it
        path = folder / "sentences.json"
        before = path.stat()
        raw = bytearray(path.read_bytes())
        raw[-10] = ord("7") if raw[-10] != ord("7") else ord("8")
        path.write_bytes(bytes(raw))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif how == "current-points-nowhere":
        (data / "CURRENT").write_text("index-does-not-exist\n")
    elif how == "current-empty":
        (data / "CURRENT").write_text("")
    else:
        raise ValueError(how)


@pytest.mark.parametrize("how", [
    "garbage-embeddings", "truncated-embeddings", "garbage-meta", "meta-not-an-object",
    "truncated-sentences", "current-points-nowhere", "current-empty",
    "same-size-embeddings", "same-size-texts", "same-size-bm25", "ff-embeddings", "bit-rot",
])
def test_damaged_index_fails_to_load_and_reingest_rebuilds_it(built, how):
    docs, data, first = built
    damage(data, how)
    with pytest.raises(IndexCorrupt):
        store.load(data)
    with pytest.raises(IndexCorrupt):
        open_retriever(Settings(data_dir=data))

    messages: list[str] = []
    report = ingest(docs, data, messages.append, rebuild=how == "bit-rot")  # must not claim "up to date"
    assert not report.up_to_date
    assert report.rebuilt_reason and any(m.startswith("warning") for m in messages)
    assert report.embedded == first.sentences and sorted(report.added) == sorted(THREE)
    top = search_docs(data, "What do volcanoes release?", 1)[0].sentence
    assert top.document == "gamma/notes.txt"
    assert sorted(p.name for p in data.iterdir() if p.is_dir()) == [store.current_folder(data).name]


@pytest.mark.parametrize("field,value", [("format_version", store.FORMAT_VERSION + 1),
                                         ("format_version", 3),  # servable meanwhile, never reused
                                         ("embed_model", "some-other-model")])
def test_index_from_another_version_is_rebuilt(built, field, value):
    docs, data, first = built
    meta_path = store.current_folder(data) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta[field] = value
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IndexCorrupt, match="another version"):
        store.load(data)
    report = ingest(docs, data)
    assert "another version" in report.rebuilt_reason
    assert report.embedded == first.sentences
    assert json.loads((store.current_folder(data) / "meta.json").read_text())[field] != value
    assert store.load(data).embeddings.shape == (first.sentences, 384)


# -- concurrency and crashes -----------------------------------------------------------------


def test_concurrent_ingest_is_refused(built):
    docs, data, _ = built
    (docs / "alpha.txt").write_text("Changed while another ingest runs.", encoding="utf-8")
    live = store.current_folder(data)
    with store.ingest_lock(data):  # another ingest holds the lock (flock: per open file)
        with pytest.raises(IngestBusy, match="another"):
            ingest(docs, data)
    assert store.current_folder(data) == live
    assert ingest(docs, data).changed == ["alpha.txt"]  # works once the lock is free


def _lock_holder(data: Path) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from service.index import store
        with store.ingest_lock(Path({str(data)!r})):
            print("locked", flush=True)
            sys.stdin.read()
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)


def test_ingest_in_another_process_blocks_this_one(built):
    docs, data, _ = built
    holder = _lock_holder(data)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IngestBusy):
            ingest(docs, data)
    finally:
        holder.communicate("", timeout=30)
    assert ingest(docs, data).up_to_date


def _env(data: Path, docs: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTNOTE_")}
    env.update(FOOTNOTE_DATA_DIR=str(data), FOOTNOTE_DOCS_DIR=str(docs), FOOTNOTE_EMBED_THREADS="1")
    return env


def _big_corpus(folder: Path, files: int = 8, per_file: int = 60) -> None:
    subjects = ["The engineer", "A farmer", "Our neighbour", "The committee", "My cousin", "The pilot"]
    verbs = ["repaired", "painted", "sold", "inspected", "described", "photographed"]
    objects = ["an old tractor", "the harbour crane", "a wooden bridge", "the village clock",
               "a copper kettle", "the red barn", "a steam engine"]
    for f in range(files):
        lines = [
            f"{subjects[(i + f) % 6]} {verbs[(i * 5 + f) % 6]} {objects[(i * 3 + f) % 7]} on day {i} of year {f}."
            for i in range(per_file)
        ]
        (folder / f"big_{f:02d}.txt").write_text(" ".join(lines), encoding="utf-8")


def _assert_previous_index_serves(data: Path, live: Path) -> None:
    assert store.current_folder(data) == live
    top = search_docs(data, "What do volcanoes release?", 1)[0].sentence
    assert (top.document, top.text) == ("gamma/notes.txt", "Volcanoes release sulfur dioxide.")


def test_sigkill_during_embedding_leaves_the_previous_index_live(built):
    docs, data, first = built
    live = store.current_folder(data)
    _big_corpus(docs)
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli.main", "ingest"], cwd=ROOT, env=_env(data, docs),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("embedding "):
                proc.send_signal(signal.SIGKILL)
                break
        assert proc.wait(timeout=60) == -signal.SIGKILL, "".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _assert_previous_index_serves(data, live)
    assert store.read_manifest(data).keys() == set(THREE)

    report = ingest(docs, data)  # the same (big) change again: succeeds this time
    assert len(report.added) == 8 and report.unchanged == 3 and report.embedded == 8 * 60
    assert [p.name for p in data.iterdir() if p.name.startswith(("tmp-", "index-"))] == [
        store.current_folder(data).name
    ]


def test_sigkill_while_writing_the_new_version(built):
    """Killed inside store.write (tmp-* folder written, not yet renamed or pointed at)."""
    docs, data, _ = built
    live = store.current_folder(data)
    (docs / "epsilon.txt").write_text("Glaciers carve deep valleys over millennia.", encoding="utf-8")
    code = textwrap.dedent("""
        import os, signal, sys
        from service.index import store
        store._fsync_file = lambda path: os.kill(os.getpid(), signal.SIGKILL)
        from service.cli.main import main
        sys.exit(main(["ingest", "--quiet"]))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(data, docs),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    leftovers = [p for p in data.iterdir() if p.name.startswith("tmp-")]
    assert len(leftovers) == 1 and (leftovers[0] / "embeddings.npy").exists()
    _assert_previous_index_serves(data, live)

    (docs / "epsilon.txt").unlink()  # back to the indexed corpus: nothing to re-embed ...
    report = ingest(docs, data)
    assert report.up_to_date
    assert not leftovers[0].exists()  # ... and the leftover of the killed ingest is gone
    assert [p.name for p in data.iterdir() if p.is_dir()] == [live.name]


def test_a_linked_secret_is_never_indexed_and_the_warning_names_the_link(make_corpus, tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("The vault combination is 4-8-15-16-23-42.")
    docs = make_corpus({"good.txt": "Copper conducts electricity well. Silver conducts it better."})
    (docs / "leak.txt").symlink_to(secret)
    messages: list[str] = []
    report = ingest(docs, tmp_path / "data", messages.append)
    assert report.documents == 1 and "leak.txt" not in store.read_manifest(tmp_path / "data")
    assert any(m.startswith("warning: skipped leak.txt") and "outside the corpus folder" in m for m in messages)
    hits = search_docs(tmp_path / "data", "What is the vault combination?")
    assert all("vault" not in h.sentence.text for h in hits)


def test_damage_the_fast_path_cannot_see_is_rebuilt_when_the_index_is_opened(built):
    """`serve`/`ask` open the index after ingesting; a checksum failure there rebuilds once."""
    from service.container import Container

    docs, data, _ = built
    damage(data, "bit-rot")
    assert ingest(docs, data).up_to_date  # sizes and mtimes look fine
    retriever = Container(Settings(docs_dir=docs, data_dir=data)).ready_retriever(quiet=True)
    assert retriever.retrieve("What do volcanoes release?", 1)[0].sentence.document == "gamma/notes.txt"
    store.load(data)  # rebuilt: passes its checksums


# -- a full disk and a read-only data folder -------------------------------------------------


def _no_space(*args, **kwargs):  # noqa: ANN002, ANN003
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_a_clear_error_that_leaves_no_trace(built, monkeypatch):
    docs, data, _ = built
    live = store.current_folder(data)
    (docs / "delta.txt").write_text("Glaciers carve valleys over millennia.", encoding="utf-8")
    monkeypatch.setattr(store.np, "save", _no_space)  # the disk fills while the vectors are written
    with pytest.raises(store.IndexWriteError, match="No space left on device.*previous index, if any, is unchanged"):
        ingest(docs, data)
    assert sorted(p.name for p in data.iterdir()) == sorted(["CURRENT", "ingest.lock", live.name])
    assert store.current_folder(data) == live and store.load(data).manifest.keys() == set(THREE)


def test_too_little_free_space_is_refused_before_writing(built, monkeypatch):
    docs, data, _ = built
    live = store.current_folder(data)
    (docs / "delta.txt").write_text("Glaciers carve valleys over millennia.", encoding="utf-8")
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=1000))
    with pytest.raises(store.IndexWriteError, match=r"not enough space .* 0\.0 MB are free"):
        ingest(docs, data)
    assert sorted(p.name for p in data.iterdir()) == sorted(["CURRENT", "ingest.lock", live.name])


def test_when_the_new_index_cannot_be_written_the_old_one_is_served(built, monkeypatch, capsys):
    from service.container import Container

    docs, data, _ = built
    (docs / "delta.txt").write_text("Glaciers carve valleys over millennia.", encoding="utf-8")
    monkeypatch.setattr(store.np, "save", _no_space)
    retriever = Container(Settings(docs_dir=docs, data_dir=data)).ready_retriever(quiet=True)
    assert set(retriever.index.manifest) == set(THREE)
    assert "could not write the new index" in capsys.readouterr().err


def read_only(monkeypatch) -> None:
    """The data folder behaves as on a read-only mount (tests run as root, so chmod cannot)."""
    real_open, real_mkdir = open, Path.mkdir

    def no_write_open(file, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if any(c in mode for c in "wax+"):
            raise OSError(errno.EROFS, "Read-only file system", str(file))
        return real_open(file, mode, *args, **kwargs)

    def no_mkdir(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if not self.exists():
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(store, "open", no_write_open, raising=False)
    monkeypatch.setattr(Path, "mkdir", no_mkdir)


def test_a_read_only_data_folder_serves_an_up_to_date_index(built, monkeypatch):
    from service.container import Container

    docs, data, _ = built
    read_only(monkeypatch)
    assert ingest(docs, data).up_to_date
    retriever = Container(Settings(docs_dir=docs, data_dir=data)).ready_retriever(quiet=True)
    assert retriever.retrieve("What do volcanoes release?", 1)[0].sentence.document == "gamma/notes.txt"


def test_a_read_only_data_folder_gives_ingest_a_clear_error(built, monkeypatch, tmp_path):
    docs, data, _ = built
    (docs / "delta.txt").write_text("Glaciers carve valleys over millennia.", encoding="utf-8")
    read_only(monkeypatch)
    with pytest.raises(store.IndexWriteError, match="read-only and the corpus changed"):
        ingest(docs, data)
    with pytest.raises(store.IndexWriteError, match="read-only and there is no index yet"):
        ingest(docs, tmp_path / "elsewhere")
