"""Several `footnote serve` replicas share one index in a real PostgreSQL (FOOTNOTE_STORE)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from service.api.app import create_app
from service.container import Container
from service.settings import Settings
from tests.api.support import LiveServer
from tests.conftest import ROOT

BRIDGE = "The Oresund Bridge opened to traffic on 1 July 2000."
TUNNEL = "The Gotthard Base Tunnel is 57 kilometres long."


def wait_for(predicate, timeout_s: float = 30.0, every_s: float = 0.1) -> float | None:  # noqa: ANN001
    """Seconds until `predicate()` held, or None if it never did within `timeout_s`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            if predicate():
                return time.monotonic() - t0
        except httpx.TransportError:
            pass
        time.sleep(every_s)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def footnote(*args: str, env: dict[str, str], **kwargs) -> subprocess.Popen | subprocess.CompletedProcess:
    command = [sys.executable, "-m", "service.cli.main", *args]
    if args[0] == "serve":
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, **kwargs)


def documents(client: httpx.Client) -> set[str]:
    response = client.get("/v1/documents")
    return {d["id"] for d in response.json()["data"]} if response.status_code == 200 else set()


def test_two_replicas_and_one_ingest_share_one_database(pg_settings, make_corpus, tmp_path):
    docs = make_corpus({"bridges.txt": BRIDGE})
    env = {**os.environ, "FOOTNOTE_STORE": pg_settings.store, "FOOTNOTE_STORE_SCHEMA": pg_settings.store_schema,
           "FOOTNOTE_DOCS_DIR": str(docs), "FOOTNOTE_DATA_DIR": str(tmp_path / "data"),
           "FOOTNOTE_LLM": "extractive", "FOOTNOTE_API_KEYS": ""}
    ports = [free_port(), free_port()]
    replicas = [footnote("serve", "--port", str(p), env=env) for p in ports]
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports]
    try:
        # Started before anything was published: alive, not ready, and saying why.
        for client in clients:
            assert wait_for(lambda c=client: c.get("/healthz").status_code == 200, 90)
            not_ready = client.get("/readyz")
            assert not_ready.status_code == 503 and "footnote ingest" in not_ready.json()["error"]["message"]
            assert client.post("/v1/ask", json={"question": "When did the bridge open?"}).status_code == 503

        first = footnote("ingest", env=env)
        assert first.returncode == 0, first.stderr
        for client in clients:
            assert wait_for(lambda c=client: c.get("/readyz").status_code == 200)
            assert documents(client) == {"bridges.txt"}

        (docs / "tunnels.txt").write_text(TUNNEL + "\n", encoding="utf-8")
        second = footnote("ingest", "--quiet", env=env)
        assert second.returncode == 0 and "added 1" in second.stdout, second.stderr
        lags = [wait_for(lambda c=client: documents(c) == {"bridges.txt", "tunnels.txt"}) for client in clients]
        assert all(lag is not None for lag in lags), lags
        for client in clients:
            answer = client.post("/v1/ask", json={"question": "How long is the Gotthard Base Tunnel?"}).json()
            assert answer["answerable"] and answer["citations"][0]["document"] == "tunnels.txt"
            assert answer["citations"][0]["text"] == TUNNEL
    finally:
        for client in clients:
            client.close()
        for replica in replicas:
            replica.terminate()
        for replica in replicas:
            try:
                replica.wait(timeout=20)
            except subprocess.TimeoutExpired:
                replica.kill()


@pytest.fixture()
def own_pg_server():
    """A server of this test's own, since the test kills it."""
    from tests.pg_server import start_server

    server = start_server()
    yield server
    server.stop()


def test_killing_the_database_mid_requests_gives_503_then_recovers(own_pg_server, make_corpus, tmp_path):
    docs = make_corpus({"bridges.txt": BRIDGE, "tunnels.txt": TUNNEL})
    settings = Settings(store=own_pg_server.url, store_schema="footnote", docs_dir=docs,
                        data_dir=tmp_path / "data", llm="extractive")
    container = Container(settings)
    container.ingest()
    live = LiveServer(create_app(settings, container=container))
    url = live.start()
    statuses: Counter[tuple[int, str | None]] = Counter()
    stop = threading.Event()

    def ask_in_a_loop() -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            for _ in range(2000):  # bounded; stopped by the test long before
                if stop.is_set():
                    return
                try:
                    r = c.post("/v1/ask", json={"question": "How long is the Gotthard Base Tunnel?"})
                except httpx.TransportError:
                    return  # the test server is shutting down
                code = r.json()["error"]["code"] if r.status_code != 200 else None
                statuses[(r.status_code, code)] += 1
                time.sleep(0.02)

    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            assert wait_for(lambda: client.get("/readyz").status_code == 200)
            askers = [threading.Thread(target=ask_in_a_loop) for _ in range(3)]
            for t in askers:
                t.start()
            time.sleep(1.0)
            own_pg_server.kill()
            assert wait_for(lambda: client.get("/readyz").status_code == 503, 20)
            message = client.get("/readyz").json()["error"]["message"]
            assert "unreachable" in message and "database" in message
            time.sleep(2.0)
            outage = client.post("/v1/ask", json={"question": "When did the Oresund Bridge open?"})
            assert outage.status_code == 503 and outage.headers["retry-after"]
            assert outage.json()["error"]["code"] == "store_unavailable"
            assert client.get("/v1/documents").status_code == 200  # what is loaded still serves

            own_pg_server.start()
            recovered = wait_for(lambda: client.get("/readyz").status_code == 200, 60)
            assert recovered is not None
            assert wait_for(lambda: client.post("/v1/ask", json={"question": "When did the Oresund Bridge open?"})
                            .status_code == 200, 30) is not None
            stop.set()
            for t in askers:
                t.join(timeout=60)
        assert all(status in (200, 503) for status, _ in statuses), statuses
        assert statuses[(200, None)] > 0 and statuses[(503, "store_unavailable")] > 0, statuses
    finally:
        stop.set()
        live.stop()
        container.close()


def test_a_replica_started_while_the_database_is_down_becomes_ready_when_it_is_back(
        own_pg_server, make_corpus, tmp_path):
    docs = make_corpus({"bridges.txt": BRIDGE})
    settings = Settings(store=own_pg_server.url, store_schema="footnote", docs_dir=docs,
                        data_dir=tmp_path / "data", llm="extractive")
    ingesting = Container(settings)
    ingesting.ingest()
    ingesting.close()
    own_pg_server.kill()
    container = Container(settings)
    service, refresh = container.serving_service()  # what `footnote serve` does first
    assert service is None and refresh is None
    live = LiveServer(create_app(settings, service, container))
    url = live.start()
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/healthz").status_code == 200
            assert wait_for(lambda: "unreachable" in client.get("/readyz").json()["error"]["message"], 30)
            assert client.post("/v1/ask", json={"question": "When did the bridge open?"}).status_code == 503
            own_pg_server.start()
            assert wait_for(lambda: client.get("/readyz").status_code == 200, 60) is not None
            answer = client.post("/v1/ask", json={"question": "When did the Oresund Bridge open?"}).json()
            assert answer["citations"][0]["text"] == BRIDGE
    finally:
        live.stop()
        container.close()
