"""A running service picks up what `footnote ingest` publishes, without a restart."""

from __future__ import annotations

import time

from service.api.app import create_app
from service.ingest.pipeline import ingest
from service.settings import Settings
from tests.api.support import LiveServer


def wait_for(predicate, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_documents_ingested_while_running_become_answerable(make_corpus, tmp_path):
    docs = make_corpus({"bridges.txt": "The Oresund Bridge opened to traffic on 1 July 2000."})
    settings = Settings(docs_dir=docs, data_dir=tmp_path / "data", llm="extractive")
    live = LiveServer(create_app(settings))
    url = live.start()
    try:
        import httpx

        with httpx.Client(base_url=url, timeout=30) as client:
            assert wait_for(lambda: client.get("/readyz").status_code == 200)
            ids = lambda: {d["id"] for d in client.get("/v1/documents").json()["data"]}  # noqa: E731
            assert ids() == {"bridges.txt"}

            (docs / "tunnels.txt").write_text("The Gotthard Base Tunnel is 57 kilometres long.\n", encoding="utf-8")
            ingest(docs, settings.data_dir)  # what `footnote ingest` does in another terminal

            assert wait_for(lambda: ids() == {"bridges.txt", "tunnels.txt"})
            answer = client.post("/v1/ask", json={"question": "How long is the Gotthard Base Tunnel?"}).json()
            assert answer["answerable"] and answer["citations"][0]["document"] == "tunnels.txt"
    finally:
        live.stop()
