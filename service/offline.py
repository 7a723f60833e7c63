"""Make third-party libraries work with no network and without their progress bars.

Nothing here runs on `import service`: each function is called where it is needed (the
tokenizer's cache where tiktoken is first used, the quiet bars by the entry points).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def quiet_library_progress() -> None:
    """bm25s draws tqdm bars on every index load; Footnote reports its own progress.

    tqdm reads TQDM_* when it is imported, so the entry points (CLI, app factory) call this
    before anything imports it."""
    os.environ.setdefault("TQDM_DISABLE", "1")


def point_tiktoken_at_bundled_cache() -> None:
    """Point tiktoken at the encodings llama-index-core ships, so it never downloads.

    tiktoken fetches cl100k_base/o200k_base from the internet unless TIKTOKEN_CACHE_DIR
    holds them; llama-index-core bundles both. A value the user set wins.
    """
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    try:
        spec = importlib.util.find_spec("llama_index.core")
    except ModuleNotFoundError:  # llama_index itself is missing; nothing to point at
        return
    if spec is None or not spec.submodule_search_locations:
        return
    cache = Path(next(iter(spec.submodule_search_locations))) / "_static" / "tiktoken_cache"
    if cache.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
