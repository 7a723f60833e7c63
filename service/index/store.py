"""The on-disk index: one immutable folder per version, switched atomically.

Layout under the data folder:
    CURRENT              name of the live index folder (replaced atomically)
    ingest.lock          held while an ingest runs
    index-<id>/          meta.json, manifest.json, texts.json, sentences.json,
                         embeddings.npy, bm25/
A new version is written into `tmp-<id>/`, fsynced, renamed, and only then does CURRENT
point at it. An ingest killed at any moment leaves the previous version live; one that cannot
write (disk full, read-only folder) removes what it wrote and says so (IndexWriteError).

meta.json records each file's size, mtime and SHA-256. The fast path (`read_manifest`) checks
sizes and mtimes, and hashes only a file whose mtime moved; `load` hashes every file it reads,
so damage that keeps the size (a bad block, a stray write) is found and the index rebuilt.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from service.errors import FootnoteError
from service.index.embedding import DIMENSION, MODEL_ID
from service.records import Sentence

FORMAT_VERSION = 4  # bump when the layout, the segmentation or the keyword terms change: old indexes are rebuilt
# 4: sentences end at Chinese, Japanese, Devanagari and Arabic full stops and are cut at
#    MAX_SENTENCE_TOKENS; each line of a fenced code block is a sentence; each Chinese or
#    Japanese character is a keyword term.
# Formats this build can answer from while it rebuilds in the background: the same files with
# the same meaning, only sentences cut (and keyword terms split) another way. An upgrade then
# costs `serve` no downtime; `ingest` still rebuilds them, since it reuses nothing from them.
SERVABLE_FORMATS = frozenset({3, FORMAT_VERSION})
CURRENT = "CURRENT"


class IndexMissing(FootnoteError):
    """No index has been built yet."""


class IndexCorrupt(FootnoteError):
    """The index on disk is unreadable or was written by an incompatible version."""

    hint = "run `footnote ingest`"


class IngestBusy(FootnoteError):
    """Another ingest holds the lock."""


class IndexWriteError(FootnoteError):
    """A new index could not be written (disk full, read-only data folder); the previous
    version, if any, is untouched and still live."""


# Errors that mean "this folder cannot take a new index", as opposed to a bug.
_CANNOT_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


@dataclass
class DocEntry:
    sha256: str
    size: int
    mtime_ns: int
    first: int  # row of its first sentence in sentences/embeddings
    count: int


@dataclass
class IndexData:
    """Everything a search or an answer needs, loaded in memory."""

    folder: Path
    manifest: dict[str, DocEntry]
    texts: dict[str, str]
    sentences: list[Sentence]
    embeddings: np.ndarray  # (n, DIMENSION) float32, L2-normalised rows

    @property
    def version(self) -> str:
        """The version's name, as `stores.IndexStore.live_version` reports it."""
        return self.folder.name

    def sentences_of(self, doc_id: str) -> list[Sentence]:
        entry = self.manifest[doc_id]
        return self.sentences[entry.first : entry.first + entry.count]


def current_folder(data_dir: Path) -> Path:
    pointer = data_dir / CURRENT
    if not pointer.exists():
        raise IndexMissing(f"no index in {data_dir}: run `footnote ingest` first")
    name = pointer.read_text(encoding="utf-8").strip()
    folder = data_dir / name
    if not name or not folder.is_dir():
        raise IndexCorrupt(f"{pointer} points at a missing folder {name!r}")
    return folder


def read_manifest(data_dir: Path) -> dict[str, DocEntry]:
    """The live manifest alone: cheap, used to decide whether anything changed."""
    folder = current_folder(data_dir)
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        _check_meta(meta, folder)
        _check_sizes(meta, folder)
        raw = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return {doc: DocEntry(**entry) for doc, entry in raw.items()}
    except IndexCorrupt:
        raise
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise IndexCorrupt(f"index manifest in {folder} is unreadable: {exc}") from exc


def _check_meta(meta: dict, folder: Path, servable: bool = False) -> None:
    formats = SERVABLE_FORMATS if servable else {FORMAT_VERSION}
    if meta.get("format_version") not in formats or meta.get("embed_model") != MODEL_ID:
        raise IndexCorrupt(
            f"index in {folder} was built by another version "
            f"(format {meta.get('format_version')}, model {meta.get('embed_model')}); "
            f"it will be rebuilt"
        )


def _check_sizes(meta: dict, folder: Path, hash_moved: bool = True) -> None:
    """Cheap damage check for the fast path, which never loads the index: sizes, and (with
    `hash_moved`) the checksum of any file whose mtime moved since it was written."""
    for name, size in meta.get("files", {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            raise IndexCorrupt(f"index in {folder} is damaged ({name} is missing or truncated); "
                               "it will be rebuilt")
        if hash_moved and path.stat().st_mtime_ns != meta.get("mtime_ns", {}).get(name):
            _check_checksum(meta, folder, name)


def _check_checksum(meta: dict, folder: Path, name: str) -> None:
    expected = meta.get("sha256", {}).get(name)
    if expected is None or _sha256_file(folder / name) != expected:
        raise IndexCorrupt(f"index in {folder} is damaged ({name} does not match its checksum); "
                           "it will be rebuilt")


def _check_checksums(meta: dict, folder: Path) -> None:
    for name in meta.get("files", {}):
        _check_checksum(meta, folder, name)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load(data_dir: Path, servable: bool = False) -> IndexData:
    """The live index. With `servable`, also one of an older format this build can answer from
    (SERVABLE_FORMATS) until it is rebuilt; ingest loads without, to reuse only current rows."""
    folder = current_folder(data_dir)
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        _check_meta(meta, folder, servable)
        _check_sizes(meta, folder, hash_moved=False)  # every file is hashed next
        _check_checksums(meta, folder)
        manifest = {
            doc: DocEntry(**e)
            for doc, e in json.loads((folder / "manifest.json").read_text("utf-8")).items()
        }
        texts = json.loads((folder / "texts.json").read_text(encoding="utf-8"))
        rows = json.loads((folder / "sentences.json").read_text(encoding="utf-8"))
        sentences = [
            Sentence(doc, n, s, e, texts[doc][s:e]) for doc, n, s, e in rows
        ]
        embeddings = np.load(folder / "embeddings.npy", allow_pickle=False)
    except IndexCorrupt:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexCorrupt(f"index in {folder} is unreadable ({exc}); it will be rebuilt") from exc
    if embeddings.shape != (len(sentences), DIMENSION) or meta.get("sentences") != len(sentences):
        raise IndexCorrupt(f"index in {folder} is inconsistent (sentence and vector counts differ)")
    if not np.isfinite(embeddings).all():
        raise IndexCorrupt(f"index in {folder} is damaged (embeddings that are not numbers); it will be rebuilt")
    return IndexData(folder, manifest, texts, sentences, embeddings)


class IndexBuilder:
    """The rows of a new version, document by document: sentences and their embeddings.

    A document unchanged since `previous` keeps its sentences and vectors (rows copied); a new
    or changed one is added with its sentences and embedded later, all at once, through
    `embed`. The manifest's `first`/`count` rows are this class's bookkeeping alone.
    """

    def __init__(self, previous: IndexData | None = None) -> None:
        self.previous = previous
        self.manifest: dict[str, DocEntry] = {}
        self.texts: dict[str, str] = {}
        self.sentences: list[Sentence] = []
        self._vectors: list[np.ndarray] = []
        self._to_embed: list[tuple[int, list[Sentence]]] = []  # (index into _vectors, sentences)

    def reusable(self, doc_id: str, sha256: str) -> bool:
        """Whether the previous version holds this document with the same content."""
        old = self.previous.manifest.get(doc_id) if self.previous is not None else None
        return old is not None and old.sha256 == sha256

    def keep(self, doc_id: str, text: str, size: int, mtime_ns: int) -> None:
        """Carry an unchanged document over from the previous version (no embedding)."""
        assert self.previous is not None
        old = self.previous.manifest[doc_id]
        self._vectors.append(self.previous.embeddings[old.first : old.first + old.count])
        self._add(doc_id, text, old.sha256, size, mtime_ns, self.previous.sentences_of(doc_id))

    def add(self, doc_id: str, text: str, sha256: str, size: int, mtime_ns: int,
            sentences: list[Sentence]) -> None:
        """A new or changed document; its sentences are embedded by `embed`."""
        self._to_embed.append((len(self._vectors), sentences))
        self._vectors.append(np.empty((0, DIMENSION), dtype=np.float32))  # filled by embed()
        self._add(doc_id, text, sha256, size, mtime_ns, sentences)

    def _add(self, doc_id: str, text: str, sha256: str, size: int, mtime_ns: int,
             sentences: list[Sentence]) -> None:
        self.manifest[doc_id] = DocEntry(sha256, size, mtime_ns, len(self.sentences), len(sentences))
        self.texts[doc_id] = text
        self.sentences.extend(sentences)

    @property
    def pending(self) -> list[str]:
        """The texts still to embed, in the order `embed` expects their vectors."""
        return [s.text for _, group in self._to_embed for s in group]

    def embed(self, vectors: np.ndarray) -> None:
        """Fill in the vectors of `pending`, in that order."""
        offset = 0
        for slot, group in self._to_embed:
            self._vectors[slot] = vectors[offset : offset + len(group)]
            offset += len(group)
        self._to_embed = []

    def embeddings(self) -> np.ndarray:
        if self._to_embed:
            raise RuntimeError("embed() the pending sentences first")
        return np.concatenate(self._vectors) if self._vectors else np.zeros((0, DIMENSION), np.float32)

    def write(self, data_dir: Path, write_bm25) -> Path:  # noqa: ANN001 - see write()
        return write(data_dir, self.manifest, self.texts, self.sentences, self.embeddings(), write_bm25)


@contextmanager
def ingest_lock(data_dir: Path, read_only_ok: bool = False) -> Iterator[bool]:
    """Hold the ingest lock; yields True. A data folder nobody can write to needs no lock:
    with `read_only_ok` that yields False (only reading is possible), else IndexWriteError."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(data_dir / "ingest.lock", "a+")
    except OSError as exc:
        if exc.errno not in _CANNOT_WRITE:
            raise
        if read_only_ok:
            yield False
            return
        raise IndexWriteError(f"cannot write to the data folder {data_dir} ({exc.strerror}): "
                              "make it writable, or point FOOTNOTE_DATA_DIR elsewhere") from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IngestBusy(f"another `footnote ingest` is running on {data_dir}") from exc
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def has_index(data_dir: Path) -> bool:
    """Whether a live index exists (it may still turn out damaged when loaded)."""
    try:
        current_folder(data_dir)
    except (IndexMissing, IndexCorrupt):
        return False
    return True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def write(
    data_dir: Path,
    manifest: dict[str, DocEntry],
    texts: dict[str, str],
    sentences: list[Sentence],
    embeddings: np.ndarray,
    write_bm25,  # callable(folder: Path) that persists the keyword index
) -> Path:
    """Write a complete new version and make it live atomically. Caller holds the lock.

    IndexWriteError when the folder cannot take it (checked up front where cheap); nothing of
    the new version is left behind then, and the previous one stays live."""
    _check_free_space(data_dir, embeddings, texts)
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = data_dir / f"tmp-{stamp}"
    final = data_dir / f"index-{stamp}"
    pointer_tmp = data_dir / f"{CURRENT}.tmp"
    try:
        _write_version(tmp, final, pointer_tmp, data_dir, manifest, texts, sentences, embeddings, write_bm25)
    except BaseException as exc:
        if current_folder_name(data_dir) != final.name:  # not live: remove every trace
            for leftover in (tmp, final):
                shutil.rmtree(leftover, ignore_errors=True)
        pointer_tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in _CANNOT_WRITE:
            raise IndexWriteError(
                f"could not write the new index to {data_dir} ({exc.strerror}; "
                f"{_free(data_dir)} free); the previous index, if any, is unchanged") from exc
        raise
    return final


def current_folder_name(data_dir: Path) -> str:
    try:
        return (data_dir / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _free(data_dir: Path) -> str:
    try:
        return f"{shutil.disk_usage(data_dir).free / 1e6:.1f} MB"
    except OSError:  # pragma: no cover
        return "unknown"


def _check_free_space(data_dir: Path, embeddings: np.ndarray, texts: dict[str, str]) -> None:
    """Refuse before writing when the disk cannot hold even the vectors and texts."""
    needed = embeddings.size * 4 + sum(len(t) for t in texts.values())  # a lower bound
    free = shutil.disk_usage(data_dir).free
    if free < needed:
        raise IndexWriteError(f"not enough space in {data_dir} for the new index: it needs at least "
                              f"{needed / 1e6:.1f} MB, {free / 1e6:.1f} MB are free; the previous "
                              "index, if any, is unchanged")


def _write_version(tmp: Path, final: Path, pointer_tmp: Path, data_dir: Path,
                   manifest: dict[str, DocEntry], texts: dict[str, str], sentences: list[Sentence],
                   embeddings: np.ndarray, write_bm25) -> None:  # noqa: ANN001
    tmp.mkdir(parents=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "embed_model": MODEL_ID,
        "sentences": len(sentences),
        "documents": len(manifest),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write_json(tmp / "manifest.json", {d: asdict(e) for d, e in manifest.items()})
    _write_json(tmp / "texts.json", texts)
    _write_json(tmp / "sentences.json", [[s.document, s.sentence, s.start, s.end] for s in sentences])
    np.save(tmp / "embeddings.npy", embeddings.astype(np.float32), allow_pickle=False)
    write_bm25(tmp / "bm25")
    files = [p for p in sorted(tmp.rglob("*")) if p.is_file()]
    for path in files:
        _fsync_file(path)
    names = {p: p.relative_to(tmp).as_posix() for p in files}
    meta["files"] = {names[p]: p.stat().st_size for p in files}
    meta["mtime_ns"] = {names[p]: p.stat().st_mtime_ns for p in files}
    meta["sha256"] = {names[p]: _sha256_file(p) for p in files}
    _write_json(tmp / "meta.json", meta)  # written last: its presence marks a complete folder
    _fsync_file(tmp / "meta.json")
    os.rename(tmp, final)
    pointer_tmp.write_text(final.name + "\n", encoding="utf-8")
    _fsync_file(pointer_tmp)
    os.replace(pointer_tmp, data_dir / CURRENT)
    _fsync_file(data_dir)


def remove_stale(data_dir: Path) -> None:
    """Delete folders no longer live: old versions and leftovers of killed ingests."""
    try:
        live = current_folder(data_dir).name
    except (IndexMissing, IndexCorrupt):
        live = None
    for child in data_dir.iterdir():
        if child.is_dir() and child.name != live and child.name.startswith(("index-", "tmp-")):
            shutil.rmtree(child, ignore_errors=True)
