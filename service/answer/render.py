"""Human-readable rendering of an answer for the terminal."""

from __future__ import annotations

import re
import textwrap

from service.answer.models import Answer

# C0/C1 control characters but newline and tab: an ESC from a document must not drive the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters shown as escapes (ESC as \\x1b), safe to print."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def as_text(answer: Answer) -> str:
    return printable(_as_text(answer))


def _as_text(answer: Answer) -> str:
    lines = [textwrap.fill(answer.answer, width=100)]
    if answer.citations:
        lines.append("")
        lines.append("Sources:")
        for c in answer.citations:
            quoted = textwrap.fill(f'"{c.text}"', width=96, initial_indent="    ", subsequent_indent="    ")
            lines.append(f"  [{c.n}] {c.document}, sentence {c.sentence} (chars {c.start}-{c.end})")
            lines.append(quoted)
    lines.append("")
    t = answer.timings_ms
    lines.append(f"({answer.backend}: {answer.model}; {t.total:.0f} ms)")
    for warning in answer.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)
