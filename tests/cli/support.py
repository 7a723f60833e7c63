"""Helpers for the CLI tests (fixtures are in conftest.py)."""

from __future__ import annotations

from service.cli.main import main


def run(capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001 - pytest's capsys
    """`footnote ARGV...` in this process: (exit status, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
