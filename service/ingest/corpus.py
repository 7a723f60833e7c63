"""Find and read the corpus: every .txt and .md file under a folder, decoded as UTF-8 (or as
UTF-16/32 when a byte-order mark says so).

Symbolic links are never followed. One pointing outside the corpus folder would let whoever
can write into the folder publish any file the service can read (`ln -s /etc/passwd`), so it
is skipped with a warning naming it. One pointing inside is skipped too: its target is indexed
once, under its own path, so an answer never cites the same sentence twice under two names.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
from collections.abc import Callable
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


def list_sources(docs_dir: Path, on_skip: Callable[[str], None] | None = None,
                 max_bytes: int | None = None) -> list[SourceFile]:
    """All .txt/.md files under `docs_dir`, sorted by id; hidden files and folders skipped
    silently; links, unusable names and files over `max_bytes` with a reason passed to `on_skip`."""
    if not docs_dir.exists():
        raise CorpusError(
            f"corpus folder {docs_dir} does not exist: pass --docs DIR or set FOOTNOTE_DOCS_DIR"
        )
    if not docs_dir.is_dir():
        raise CorpusError(f"{docs_dir} is not a folder: pass a folder of .txt/.md files")
    skip = on_skip or (lambda reason: None)
    root = docs_dir.resolve()  # the folder itself may be a link; what is under it may not
    sources = []
    pending = [root]  # a stack, not recursion: any nesting depth works
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            skip(f"skipped {_rel(folder, root)}/: cannot read the folder ({exc.strerror})")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            doc_id = _rel(path, root)
            if entry.is_symlink():
                if path.suffix.lower() in SUFFIXES or entry.is_dir():
                    skip(_link_reason(doc_id, path, root))
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append(path)
                continue
            if path.suffix.lower() not in SUFFIXES or not entry.is_file(follow_symlinks=False):
                continue
            problem = _name_problem(doc_id)
            if problem:
                skip(f"skipped {doc_id!a}: {problem}; rename it to include it")
                continue
            st = entry.stat(follow_symlinks=False)
            if max_bytes is not None and st.st_size > max_bytes:
                skip(f"skipped {doc_id}: {_size(st.st_size)} is over the per-document limit of "
                     f"{_size(max_bytes)} (FOOTNOTE_MAX_DOCUMENT_BYTES); split it or raise the limit")
                continue
            sources.append(SourceFile(doc_id, path, st.st_size, st.st_mtime_ns))
    if not sources:
        raise CorpusError(
            f"no .txt or .md files in {docs_dir}: add documents there, or pass --docs DIR"
        )
    return sorted(sources, key=lambda s: s.doc_id)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1_000_000 else f"{n:,} bytes"


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _link_reason(doc_id: str, path: Path, root: Path) -> str:
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling or a loop
        return f"skipped {doc_id}: a symbolic link to nothing readable"
    if target == root or root in target.parents:
        return (f"skipped {doc_id}: a symbolic link inside the corpus folder "
                f"(its target {_rel(target, root)} is indexed under its own name)")
    return f"skipped {doc_id}: a symbolic link to outside the corpus folder (not followed)"


def _name_problem(doc_id: str) -> str | None:
    """Why a path cannot be a document id (it must survive JSON and a URL), or None."""
    try:
        doc_id.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if any(ord(c) < 32 or ord(c) == 127 for c in doc_id):
        return "its name contains a control character (such as a line break)"
    return None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Windows Notepad's "Unicode" is UTF-16 with a byte-order mark; its NUL bytes are not binary.
# Only a mark makes the encoding certain: text in other encodings is refused, not guessed.
_BOMS = [(codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]  # UTF-32 LE starts like UTF-16 LE


def _marked_encoding(data: bytes) -> str | None:
    return next((name for bom, name in _BOMS if data.startswith(bom)), None)


def read_document(source: SourceFile) -> tuple[Document | None, str | None]:
    """(document, None) or (None, reason it was skipped) for one file."""
    # O_NOFOLLOW: a file swapped for a link after it was listed is refused, not followed.
    try:
        fd = os.open(source.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        return None, f"skipped {source.doc_id}: cannot read it ({exc.strerror})"
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None, f"skipped {source.doc_id}: not a regular file"
        data = handle.read()
    if not data.strip():
        return None, f"skipped {source.doc_id}: the file is empty"
    encoding = _marked_encoding(data)
    if encoding is None and b"\x00" in data[:8192]:
        return None, f"skipped {source.doc_id}: looks like a binary file, not text"
    try:
        # The codec drops the byte-order mark: offsets index the text a reader sees.
        text = data.decode(encoding or "utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, (
            f"skipped {source.doc_id}: not valid {(encoding or 'utf-8').upper()} (byte {exc.start}); "
            "re-save it as UTF-8 to include it"
        )
    if not text.strip():
        return None, f"skipped {source.doc_id}: the file is empty"
    # A NUL past the binary sniff is noise that would reach answers and terminals verbatim.
    return Document(source.doc_id, text.replace("\x00", ""), sha256_bytes(data)), None
