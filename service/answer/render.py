"""Human-readable rendering of an answer for the terminal."""

from __future__ import annotations

import textwrap

from service.answer.models import Answer


def as_text(answer: Answer) -> str:
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
