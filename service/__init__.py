"""Footnote: answers over your documents, every claim cited to an exact source sentence."""

__version__ = "0.1.0"
