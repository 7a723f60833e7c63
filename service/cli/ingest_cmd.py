"""`footnote ingest [--docs DIR]`: bring the index up to date with the corpus folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="index the documents (only what changed)")
    p.add_argument("--docs", type=Path, default=None, help="corpus folder (default: FOOTNOTE_DOCS_DIR or seeds/)")
    p.add_argument("--quiet", "-q", action="store_true", help="print only warnings and the summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from service.container import Container

    if args.docs is not None:
        settings = settings.model_copy(update={"docs_dir": args.docs})

    def progress(message: str) -> None:
        if not args.quiet or message.startswith("warning"):
            print(message, file=sys.stderr, flush=True)

    report = Container(settings).ingest(progress)
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
