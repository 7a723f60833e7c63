"""Entry point of the `footnote` command: parses arguments, reads the settings once, dispatches
to a command, and reports any `FootnoteError` as one `error:` line with exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service.cli import ask_cmd, eval_cmd, ingest_cmd, search_cmd, serve_cmd
from service.errors import FootnoteError
from service.offline import quiet_library_progress
from service.settings import Settings

# Each command module registers its own subparser and does its work through the services.
COMMANDS = [ingest_cmd, search_cmd, ask_cmd, serve_cmd, eval_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="footnote",
        description="Answers questions over your documents, citing the exact source sentences.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_library_progress()
    try:
        return int(args.run(args, Settings()) or 0)
    except FootnoteError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
