"""Entry point of the `footnote` command: parses arguments and dispatches to a command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service.cli import ingest_cmd, search_cmd

COMMANDS = [ingest_cmd, search_cmd]


def _optional(name: str):
    """Commands added by later modules register here without touching this file's logic."""
    import importlib

    try:
        return importlib.import_module(f"service.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"service.cli.{name}":
            return None
        raise


for _name in ("ask_cmd", "serve_cmd", "eval_cmd"):
    _module = _optional(_name)
    if _module is not None:
        COMMANDS.append(_module)


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
