"""Fixtures for the HTTP API: real uvicorn servers on loopback, fed by scripted fake models
(helpers in support.py).

- `api_settings`: the seed corpus with the extractive backend and no auth.
- `serve(model=None, factory=None, **overrides)`: start a server in a background thread;
  stopped after the test. `server` / `client`: one shared default server for read-only tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from service.settings import Settings
from tests.api.support import FakeModel, Live, LiveServer, build_app


@pytest.fixture(scope="session")
def api_settings(seed_settings) -> Settings:
    return seed_settings.model_copy(update={"llm": "extractive", "api_keys": "", "cors_origins": ""})


@pytest.fixture()
def serve(seed_retriever, api_settings) -> Iterator[Callable[..., Live]]:
    """serve(model=None, factory=None, **setting_overrides) -> Live; stopped after the test.

    `factory(name)` replaces the backend factory (default: always `model`)."""
    started: list[LiveServer] = []

    def start(model: FakeModel | None = None, factory=None, **overrides) -> Live:  # noqa: ANN001
        settings = api_settings.model_copy(update=overrides)
        app = build_app(seed_retriever, settings, model, factory)
        live = LiveServer(app)
        started.append(live)
        return Live(live.start(), app, model)

    yield start
    for live in started:
        live.stop()


@pytest.fixture(scope="session")
def server(seed_retriever, api_settings) -> Iterator[Live]:
    """A shared server: extractive by default, generative requests answered by a quick fake."""
    model = FakeModel()
    app = build_app(seed_retriever, api_settings, model)
    live = LiveServer(app)
    yield Live(live.start(), app, model)
    live.stop()


@pytest.fixture(scope="session")
def client(server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
