"""Fixtures for the CLI tests (helpers in support.py).

- `seeded`: the CLI's settings point at the session's ingested seed corpus (read-only).
"""

from __future__ import annotations

import pytest


@pytest.fixture()
def seeded(use_settings, seed_settings) -> None:
    use_settings(data_dir=seed_settings.data_dir, docs_dir=seed_settings.docs_dir)
