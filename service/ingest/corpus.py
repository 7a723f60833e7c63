"""Find and read the corpus: every .txt and .md file under a folder, decoded as UTF-8."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from service.errors import FootnoteError

SUFFIXES = {".txt", ".md"}


class CorpusError(FootnoteError):
    """The corpus folder itself is unusable (missing, empty); the message says what to do."""


@dataclass(frozen=True)
class SourceFile:
    """A candidate document on disk, identified by its path relative to the corpus folder."""

    doc_id: str
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    sha256: str


def list_sources(docs_dir: Path) -> list[SourceFile]:
    """All .txt/.md files under `docs_dir`, sorted by id; hidden files and folders skipped."""
    if not docs_dir.exists():
        raise CorpusError(
            f"corpus folder {docs_dir} does not exist: pass --docs DIR or set FOOTNOTE_DOCS_DIR"
        )
    if not docs_dir.is_dir():
        raise CorpusError(f"{docs_dir} is not a folder: pass a folder of .txt/.md files")
    sources = []
    for path in docs_dir.rglob("*"):
        rel = path.relative_to(docs_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in SUFFIXES and path.is_file():
            st = path.stat()
            sources.append(SourceFile(rel.as_posix(), path, st.st_size, st.st_mtime_ns))
    if not sources:
        raise CorpusError(
            f"no .txt or .md files in {docs_dir}: add documents there, or pass --docs DIR"
        )
    return sorted(sources, key=lambda s: s.doc_id)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_document(source: SourceFile) -> tuple[Document | None, str | None]:
    """(document, None) or (None, reason it was skipped) for one file."""
    data = source.path.read_bytes()
    if not data.strip():
        return None, f"skipped {source.doc_id}: the file is empty"
    if b"\x00" in data[:8192]:
        return None, f"skipped {source.doc_id}: looks like a binary file, not text"
    try:
        # utf-8-sig drops a byte-order mark: offsets index the text a reader sees.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, (
            f"skipped {source.doc_id}: not valid UTF-8 (byte {exc.start}); "
            "re-save it as UTF-8 to include it"
        )
    return Document(source.doc_id, text, sha256_bytes(data)), None
