"""The sentence record: what every search result and every citation points at."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of one document, with exact character offsets.

    Invariant: `text == document_text[start:end]` (offsets into the file's decoded text).
    """

    document: str  # path relative to the corpus folder, "/"-separated
    sentence: int  # 1-based number within its document
    start: int
    end: int
    text: str

    @property
    def key(self) -> str:
        """A stable id used in the index and in prompts' provenance."""
        return f"{self.document}#{self.sentence}"

    def to_dict(self) -> dict:
        return asdict(self)
