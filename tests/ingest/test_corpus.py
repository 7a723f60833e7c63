"""Finding and reading the corpus: links, odd names, deep folders."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest

from service.ingest.corpus import list_sources, read_document

TEXT = "Copper conducts electricity well."


def listing(docs: Path) -> tuple[list[str], list[str]]:
    skipped: list[str] = []
    return [s.doc_id for s in list_sources(docs, skipped.append)], skipped


def test_links_out_of_the_corpus_folder_are_not_followed(make_corpus, tmp_path):
    secret = tmp_path / "secret" / "passwd.txt"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0 the secret password is hunter2.")
    docs = make_corpus({"good.txt": TEXT})
    (docs / "leak.txt").symlink_to(secret)
    (docs / "leakdir").symlink_to(secret.parent, target_is_directory=True)
    ids, skipped = listing(docs)
    assert ids == ["good.txt"]
    assert any("leak.txt" in r and "outside the corpus folder" in r for r in skipped), skipped
    assert any("leakdir" in r and "outside the corpus folder" in r for r in skipped), skipped


def test_links_inside_the_corpus_folder_are_indexed_once_under_the_target(make_corpus):
    docs = make_corpus({"2024/report.txt": TEXT})
    (docs / "latest.txt").symlink_to(docs / "2024" / "report.txt")
    (docs / "alias").symlink_to(docs / "2024", target_is_directory=True)
    (docs / "loop").symlink_to(docs, target_is_directory=True)
    (docs / "dangling.txt").symlink_to(docs / "gone.txt")
    ids, skipped = listing(docs)
    assert ids == ["2024/report.txt"]
    assert any("latest.txt" in r and "2024/report.txt is indexed under its own name" in r for r in skipped)
    assert any("dangling.txt" in r and "to nothing readable" in r for r in skipped)


def test_a_corpus_folder_that_is_itself_a_link_works(make_corpus, tmp_path):
    real = make_corpus({"a.txt": TEXT}, name="real")
    (tmp_path / "docs").symlink_to(real, target_is_directory=True)
    assert listing(tmp_path / "docs") == (["a.txt"], [])


def test_a_file_swapped_for_a_link_after_listing_is_not_read(make_corpus, tmp_path):
    (tmp_path / "secret.txt").write_text("the secret password is hunter2.")
    docs = make_corpus({"a.txt": TEXT})
    source = list_sources(docs)[0]
    os.remove(source.path)
    source.path.symlink_to(tmp_path / "secret.txt")
    document, reason = read_document(source)
    assert document is None and "a.txt" in reason


def _remove_bottom_up(top: Path) -> None:
    """Delete a chain of single folders; shutil.rmtree (and pytest's cleanup) would recurse."""
    deepest = top
    while (deepest / "d").is_dir():
        deepest = deepest / "d"
    while True:
        for child in deepest.iterdir():
            child.unlink()
        deepest.rmdir()
        if deepest == top:
            return
        deepest = deepest.parent


def test_folders_nested_deeper_than_the_recursion_limit_are_listed(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    try:
        deep = docs
        for _ in range(1200):  # ~2,400 path bytes: fine for the OS, past Python's recursion limit
            deep = deep / "d"
            deep.mkdir()  # one level at a time: mkdir(parents=True) recurses too
        (deep / "deep.txt").write_text(TEXT)
        (docs / "top.txt").write_text(TEXT)
        ids, _ = listing(docs)
        assert ids[-1] == "top.txt" and ids[0].endswith("/d/deep.txt") and len(ids) == 2
    finally:
        _remove_bottom_up(docs)


@pytest.mark.parametrize("name, why", [("line\nbreak.txt", "control character"),
                                       ("tab\there.md", "control character")])
def test_names_that_cannot_be_a_document_id_are_skipped_with_a_reason(make_corpus, name, why):
    docs = make_corpus({"good.txt": TEXT, name: TEXT})
    ids, skipped = listing(docs)
    assert ids == ["good.txt"] and len(skipped) == 1 and why in skipped[0] and "rename" in skipped[0]


def test_a_name_that_is_not_utf8_is_skipped(make_corpus):
    docs = make_corpus({"good.txt": TEXT})
    with open(os.path.join(os.fsencode(docs), b"caf\xe9.txt"), "w") as handle:
        handle.write(TEXT)
    ids, skipped = listing(docs)
    assert ids == ["good.txt"] and "not valid UTF-8" in skipped[0]


def test_files_over_the_size_limit_are_skipped_with_a_reason(make_corpus):
    docs = make_corpus({"small.txt": TEXT, "huge.txt": TEXT * 100})
    skipped: list[str] = []
    ids = [s.doc_id for s in list_sources(docs, skipped.append, max_bytes=1000)]
    assert ids == ["small.txt"]
    assert len(skipped) == 1 and "huge.txt" in skipped[0] and "FOOTNOTE_MAX_DOCUMENT_BYTES" in skipped[0]


def test_nul_bytes_past_the_binary_sniff_are_dropped(make_corpus):
    docs = make_corpus({"a.txt": ("Plain words. " * 700 + "A hidden\x00 NUL.").encode()})
    document, _ = read_document(list_sources(docs)[0])
    assert "\x00" not in document.text and document.text.endswith("A hidden NUL.")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_read(make_corpus, encoding):
    text = "Das Brandenburger Tor steht in Berlin. 长城位于中国。"
    data = text.encode(encoding)
    if not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE)):
        data = codecs.BOM_UTF16_BE + data  # Python writes big-endian without a mark
    docs = make_corpus({"notepad.txt": data})
    document, skipped = read_document(list_sources(docs)[0])
    assert skipped is None and document.text == text


def test_utf16_without_a_byte_order_mark_is_still_refused(make_corpus):
    docs = make_corpus({"raw.txt": "Plain words here.".encode("utf-16-le")})
    document, skipped = read_document(list_sources(docs)[0])
    assert document is None and "binary" in skipped


def test_broken_utf16_says_which_encoding_failed(make_corpus):
    docs = make_corpus({"bad.txt": codecs.BOM_UTF16_LE + "ok".encode("utf-16-le") + b"\x00\xd8"})
    document, skipped = read_document(list_sources(docs)[0])
    assert document is None and "not valid UTF-16" in skipped and "re-save it as UTF-8" in skipped
