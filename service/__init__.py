"""Footnote: answers over your documents, every claim cited to an exact source sentence."""

from service.offline import configure_offline_caches

configure_offline_caches()

__version__ = "0.1.0"
