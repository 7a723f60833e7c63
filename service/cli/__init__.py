"""The `footnote` command line: one thin module per command over the services.

Each command is `run(args, settings) -> exit status`; `main` reports every `FootnoteError`."""

from service.errors import FootnoteError


class UsageError(FootnoteError):
    """An argument the parser cannot check by itself (e.g. a range)."""
