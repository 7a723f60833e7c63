"""Footnote's citations in the shapes chat frontends read (routes_chat.py sends them).

- Open WebUI: a `source` per citation (`ChatSource`; as a stream `event`, or the completion's
  `sources`). Its `[n]` links to the n-th source in arrival order, and it merges sources with
  the same `metadata.source`, so each citation gets its own: the sentence's URL.
- OpenAI's convention: a `url_citation` annotation per [n] marker, spanning the claim the
  marker ends (`content[start_index:end_index]`), in `message.annotations` and in stream
  deltas (indices into the whole content). Open WebUI turns these into sources too; as they
  share the sentence's URL with the `source` events, it merges each pair into one source.
- Frontends that read neither (LibreChat): the `-markdown` models end the content with a
  numbered Sources list of links and quotes.
- Footnote's own: the full citation objects with their links (`footnote.citations`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from service.answer.models import Answer, Citation
from service.api.links import SentenceLinks
from service.api.schemas import (
    ChatSource,
    LinkedCitation,
    SourceEvent,
    SourceInfo,
    SourceMetadata,
    UrlCitation,
    UrlCitationSpan,
)

# The verifier ends every kept claim with its markers: "... [1][2]." or "...” [1]".
_MARKER_RUN = re.compile(r"((?:\[\d+\])+)[.!?…]?")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def short_name(document: str) -> str:
    """`000_f586ed492cfdf968.txt` -> `000_f586….txt`: long file names crowd a frontend's chips."""
    folder, slash, file = document.rpartition("/")
    stem, dot, ext = file.rpartition(".")
    if not dot:
        stem, ext = file, ""
    if len(stem) > 12:
        stem = stem[:8] + "…"
    return f"{folder}{slash}{stem}{dot}{ext}"


def source_name(citation: Citation) -> str:
    return f"{short_name(citation.document)} · sentence {citation.sentence}"


def claim_spans(text: str, known: set[int]) -> list[tuple[int, int, list[int]]]:
    """(start, end, [n, ...]) of each cited claim in an answer text, in order. Only runs of
    known markers count, so a quoted "[3]" inside a claim does not cut it."""
    spans: list[tuple[int, int, list[int]]] = []
    start = 0
    for match in _MARKER_RUN.finditer(text):
        numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
        if not all(n in known for n in numbers):
            continue
        head = text[start:match.start()]
        spans.append((start + len(head) - len(head.lstrip()), match.end(), numbers))
        start = match.end()
    return spans


def _markdown_text(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


@dataclass
class ChatCitations:
    """The citations of one chat reply, for a whole completion or chunk by chunk."""

    links: SentenceLinks
    markdown: bool = False
    _known: dict[int, Citation] = field(default_factory=dict)
    _streamed: int = 0  # characters of answer content sent so far

    def url(self, citation: Citation) -> str:
        return self.links.url(citation.document, citation.sentence)

    def source(self, citation: Citation) -> ChatSource:
        url, name = self.url(citation), source_name(citation)
        return ChatSource(
            source=SourceInfo(id=f"{citation.document}#s{citation.sentence}", name=name, url=url),
            document=[citation.text],
            metadata=[SourceMetadata(source=url, name=name, source_url=url, document=citation.document,
                                     sentence=citation.sentence, n=citation.n)],
        )

    def linked(self, citations: list[Citation]) -> list[LinkedCitation]:
        return [LinkedCitation(**c.model_dump(), url=self.url(c)) for c in citations]

    def annotations(self, text: str, citations: dict[int, Citation], offset: int = 0) -> list[UrlCitation]:
        """One url_citation per [n] in `text`, which starts at `offset` in the whole content."""
        found = []
        for start, end, numbers in claim_spans(text, set(citations)):
            for n in numbers:
                citation = citations[n]
                found.append(UrlCitation(url_citation=UrlCitationSpan(
                    start_index=offset + start, end_index=offset + end, url=self.url(citation),
                    title=source_name(citation))))
        return found

    def sources_list(self, answer: Answer) -> str:
        """The Markdown that `-markdown` models append to the content ("" when nothing is cited)."""
        if not self.markdown or not answer.citations:
            return ""
        lines = [f"{c.n}. [{_markdown_text(source_name(c))}]({self.url(c)}) “{_markdown_text(c.text)}”"
                 for c in answer.citations]
        return "\n\n**Sources**\n\n" + "\n".join(lines)

    # -- a whole completion ------------------------------------------------------------------

    def content(self, answer: Answer) -> str:
        return answer.answer + self.sources_list(answer)

    def message_annotations(self, answer: Answer) -> list[UrlCitation]:
        return self.annotations(answer.answer, {c.n: c for c in answer.citations})

    def sources(self, answer: Answer) -> list[ChatSource]:
        return [self.source(c) for c in answer.citations]

    # -- streaming: call in the order the answer's events arrive ----------------------------

    def cited(self, citation: Citation) -> SourceEvent:
        """The stream event for a citation (sent before the text that first uses it)."""
        self._known[citation.n] = citation
        return SourceEvent(data=self.source(citation))

    def delta(self, text: str) -> list[UrlCitation]:
        """The annotations of the next piece of answer text."""
        found = self.annotations(text, self._known, self._streamed)
        self._streamed += len(text)
        return found
