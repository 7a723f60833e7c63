"""`footnote ingest [--docs DIR]`: bring the index up to date with the corpus folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.settings import get_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="index the documents (only what changed)")
    p.add_argument("--docs", type=Path, default=None, help="corpus folder (default: FOOTNOTE_DOCS_DIR or seeds/)")
    p.add_argument("--quiet", "-q", action="store_true", help="print only warnings and the summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from service.index.store import IngestBusy
    from service.ingest.corpus import CorpusError
    from service.ingest.pipeline import ingest

    settings = get_settings()
    docs = args.docs or settings.docs_dir

    def progress(message: str) -> None:
        if not args.quiet or message.startswith("warning"):
            print(message, file=sys.stderr, flush=True)

    try:
        report = ingest(docs, settings.data_dir, progress, settings.embed_batch_size, settings.embed_threads)
    except (CorpusError, IngestBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if report.up_to_date:
        print(f"index is up to date: {report.documents} documents, {report.sentences} sentences "
              f"({report.seconds * 1000:.0f} ms)")
        return 0
    print(
        f"indexed {report.documents} documents, {report.sentences} sentences in {report.seconds:.1f} s "
        f"(added {len(report.added)}, changed {len(report.changed)}, removed {len(report.removed)}, "
        f"unchanged {report.unchanged}, skipped {len(report.skipped)}; embedded {report.embedded})"
    )
    return 0
