"""Ingest a corpus folder into the persisted index, touching only what changed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from service.index import store
from service.index.embedding import MiniLMEncoder
from service.index.store import DocEntry, IndexCorrupt, IndexMissing
from service.ingest.corpus import CorpusError, SourceFile, list_sources, read_document, sha256_bytes
from service.ingest.segment import segment

log = logging.getLogger("footnote.ingest")

Progress = Callable[[str], None]


@dataclass
class IngestReport:
    up_to_date: bool = False
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)  # human-readable reasons
    documents: int = 0
    sentences: int = 0
    embedded: int = 0
    rebuilt_reason: str | None = None
    seconds: float = 0.0


def _quick_unchanged(sources: list[SourceFile], old: dict[str, DocEntry]) -> bool:
    """True when every file matches the manifest by size and mtime, or by content hash."""
    if {s.doc_id for s in sources} != set(old):
        return False
    for s in sources:
        entry = old[s.doc_id]
        if entry.size == s.size and entry.mtime_ns == s.mtime_ns:
            continue
        if entry.size != s.size or sha256_bytes(s.path.read_bytes()) != entry.sha256:
            return False
    return True


def ingest(docs_dir: Path, data_dir: Path, progress: Progress | None = None,
           batch_size: int = 64, threads: int = 0,
           encoder: Callable[[], MiniLMEncoder] | None = None, rebuild: bool = False,
           max_document_bytes: int | None = None) -> IngestReport:
    """Bring the index in `data_dir` up to date with `docs_dir`. Raises CorpusError, IngestBusy,
    IndexWriteError. `rebuild` skips the fast path, so damage it cannot see is found; files over
    `max_document_bytes` are skipped with a warning.

    `encoder()` gives the embedding encoder, asked only when something must be embedded
    (the container passes its own; by default a new one with `threads`)."""
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    report = IngestReport()
    sources = read_sources(docs_dir, report, say, max_document_bytes)

    # A read-only data folder (a common container setup) can still serve an up-to-date index.
    with store.ingest_lock(data_dir, read_only_ok=True) as writable:
        previous: store.IndexData | None = None
        old_manifest: dict[str, DocEntry] = {}
        try:
            old_manifest = store.read_manifest(data_dir)
            if not rebuild and _quick_unchanged(sources, old_manifest):
                report.up_to_date = True
                if writable:
                    store.remove_stale(data_dir)  # leftovers of an ingest killed earlier
                report.documents = len(old_manifest)
                report.sentences = sum(e.count for e in old_manifest.values())
                report.seconds = time.perf_counter() - t0
                return report
            if not writable:
                raise store.IndexWriteError(_read_only(data_dir, "the corpus changed since it was built"))
            previous = store.load(data_dir)
        except IndexMissing as exc:
            if not writable:
                raise store.IndexWriteError(_read_only(data_dir, "there is no index yet")) from exc
        except IndexCorrupt as exc:
            if not writable:
                raise store.IndexWriteError(_read_only(data_dir, str(exc))) from exc
            report.rebuilt_reason = str(exc)
            say(f"warning: {exc}")
            old_manifest = {}

        builder = store.IndexBuilder(previous)
        for i, src in enumerate(sources, start=1):
            doc, reason = read_document(src)
            if doc is None:
                skip(report, say, reason)
                continue
            if builder.reusable(src.doc_id, doc.sha256):
                builder.keep(doc.doc_id, doc.text, src.size, src.mtime_ns)
                report.unchanged += 1
            else:
                doc_sentences = segment(doc.doc_id, doc.text)
                if not doc_sentences:
                    report.skipped.append(f"skipped {src.doc_id}: no sentences in it")
                    continue
                builder.add(doc.doc_id, doc.text, doc.sha256, src.size, src.mtime_ns, doc_sentences)
                (report.changed if src.doc_id in old_manifest else report.added).append(src.doc_id)
            if i % 100 == 0 or i == len(sources):
                say(f"read {i}/{len(sources)} files, {len(builder.sentences)} sentences")
        report.removed = sorted(set(old_manifest) - set(builder.manifest))

        if not builder.manifest:
            raise no_documents(docs_dir, report)

        pending = builder.pending
        if pending:
            say(f"embedding {len(pending)} sentences")
            builder.embed((encoder or (lambda: MiniLMEncoder(threads)))().encode(
                pending, batch_size=batch_size,
                on_batch=lambda done, total: say(f"embedded {done}/{total} sentences")
                if done == total or (done // batch_size) % 20 == 0 else None,
            ))
            report.embedded = len(pending)

        say("building keyword index")
        from service.index import keyword

        bm25 = keyword.build(builder.sentences)
        builder.write(data_dir, lambda folder: bm25.persist(str(folder), show_progress=False))
        store.remove_stale(data_dir)
        report.documents = len(builder.manifest)
        report.sentences = len(builder.sentences)
        report.seconds = time.perf_counter() - t0
        return report


def _read_only(data_dir: Path, problem: str) -> str:
    return (f"cannot update the index: the data folder {data_dir} is read-only and {problem}; "
            "run `footnote ingest` where it is writable")


# ---- shared with the PostgreSQL store's ingest (service/index/pg_store.py) ------------------


def skip(report: IngestReport, say: Progress, reason: str) -> None:
    """A file left out: in the report, and said as a warning while the ingest runs."""
    report.skipped.append(reason)
    say(f"warning: {reason}")


def read_sources(docs_dir: Path, report: IngestReport, say: Progress,
                 max_document_bytes: int | None) -> list[SourceFile]:
    """The corpus's files; each one left out (link, too large, bad name) goes through `skip`."""
    return list_sources(docs_dir, lambda reason: skip(report, say, reason), max_document_bytes)


def no_documents(docs_dir: Path, report: IngestReport) -> CorpusError:
    reasons = "; ".join(report.skipped)
    return CorpusError(f"no readable documents in {docs_dir} ({reasons})")
