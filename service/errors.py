"""The one base of every error Footnote reports to a person (CLI) or a client (HTTP).

Each subclass carries a message a person can act on. The CLI prints it once, in `main`; the
HTTP translator (`service/api/errors.py`) maps each kind to a status. Anything that is not a
`FootnoteError` is a bug and is reported as one.
"""

from __future__ import annotations

from typing import ClassVar


class FootnoteError(Exception):
    """A failure with a message safe to show to the person who caused or can fix it."""

    hint: ClassVar[str] = ""  # what to run about it, added by the CLI
