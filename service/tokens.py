"""Counting tokens the way the prompt budget does: tiktoken's cl100k_base, never downloaded."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _encoding():
    from service.offline import point_tiktoken_at_bundled_cache

    point_tiktoken_at_bundled_cache()  # before tiktoken looks for cl100k_base: never download it
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))
