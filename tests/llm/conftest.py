"""Recorded LLM traffic lives in tests/cassettes/<test module>/ (see its README)."""

from pathlib import Path

import pytest

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"


@pytest.fixture(scope="module")
def vcr_cassette_dir(request) -> str:
    return str(CASSETTES / request.module.__name__.split(".")[-1])


@pytest.fixture(scope="module")
def vcr_config() -> dict:
    # Match on the body too: a changed prompt must miss the cassette (and be re-recorded),
    # never silently replay an answer to a different question.
    return {
        "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
        "filter_headers": ["authorization", "cookie", "set-cookie"],
    }
