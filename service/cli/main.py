"""Entry point of the `footnote` command: parses arguments and dispatches to a command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service.cli import ask_cmd, eval_cmd, ingest_cmd, search_cmd, serve_cmd

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
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
