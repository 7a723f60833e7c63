"""Wiring: `serve` and `ask` answer from the index already built when a new one cannot be made yet."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from service.container import Container
from service.index import store
from service.ingest.pipeline import ingest
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = {"bridges.txt": "The Oresund Bridge opened to traffic on 1 July 2000."}
TUNNEL = "The Gotthard Base Tunnel is 57 kilometres long.\n"


def test_serve_answers_from_the_built_index_before_the_corpus_is_reindexed(make_corpus, tmp_path):
    docs = make_corpus(BRIDGE)
    settings = Settings(docs_dir=docs, data_dir=tmp_path / "data", llm="extractive")
    ingest(docs, settings.data_dir)
    (docs / "tunnels.txt").write_text(TUNNEL, encoding="utf-8")  # a change that takes long to embed

    service, refresh = Container(settings).serving_service()
    assert set(service.retriever.index.manifest) == {"bridges.txt"}  # ready without ingesting
    assert refresh is not None
    refresh()  # what serve runs in the background
    assert set(store.load(settings.data_dir).manifest) == {"bridges.txt", "tunnels.txt"}


def test_without_an_index_serve_ingests_first(make_corpus, tmp_path):
    docs = make_corpus(BRIDGE)
    settings = Settings(docs_dir=docs, data_dir=tmp_path / "data", llm="extractive")
    service, refresh = Container(settings).serving_service()
    assert refresh is None and set(service.retriever.index.manifest) == {"bridges.txt"}


def test_while_another_ingest_runs_the_built_index_answers(make_corpus, tmp_path, capsys):
    docs = make_corpus(BRIDGE)
    data = tmp_path / "data"
    ingest(docs, data)
    (docs / "tunnels.txt").write_text(TUNNEL, encoding="utf-8")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from service.index import store
        with store.ingest_lock(Path({str(data)!r})):
            print("locked", flush=True)
            sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        retriever = Container(Settings(docs_dir=docs, data_dir=data)).ready_retriever(quiet=True)
        assert set(retriever.index.manifest) == {"bridges.txt"}
        assert "another `footnote ingest` is running" in capsys.readouterr().err
    finally:
        holder.communicate("", timeout=10)


def test_when_the_background_ingest_cannot_write_serve_keeps_the_built_index(make_corpus, tmp_path, monkeypatch,
                                                                               capsys):
    import errno

    docs = make_corpus(BRIDGE)
    settings = Settings(docs_dir=docs, data_dir=tmp_path / "data", llm="extractive")
    ingest(docs, settings.data_dir)
    live = store.current_folder(settings.data_dir)
    (docs / "tunnels.txt").write_text(TUNNEL, encoding="utf-8")

    def no_space(*args, **kwargs):  # noqa: ANN002, ANN003
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.np, "save", no_space)
    service, refresh = Container(settings).serving_service()
    refresh()  # must not raise: serve goes on answering
    assert "could not write the new index" in capsys.readouterr().err
    assert store.current_folder(settings.data_dir) == live and set(service.index.manifest) == {"bridges.txt"}


def _built_with_format(make_corpus, tmp_path, version: int) -> Settings:
    """The bridge corpus indexed, its index marked as written in format `version`."""
    import json

    docs = make_corpus(BRIDGE)
    settings = Settings(docs_dir=docs, data_dir=tmp_path / "data", llm="extractive")
    ingest(docs, settings.data_dir)
    meta_path = store.current_folder(settings.data_dir) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = version
    meta_path.write_text(json.dumps(meta))
    return settings


def _live_format(settings: Settings) -> int:
    import json

    return json.loads((store.current_folder(settings.data_dir) / "meta.json").read_text())["format_version"]


def test_after_an_upgrade_serve_answers_from_the_older_index_while_it_is_rebuilt(make_corpus, tmp_path):
    settings = _built_with_format(make_corpus, tmp_path, 3)  # the previous release: other sentence cuts
    service, refresh = Container(settings).serving_service()
    assert refresh is not None, "serve rebuilt before answering"
    assert service.ask("When did the Oresund Bridge open?").citations
    refresh()  # the background ingest rebuilds it in the current format
    assert _live_format(settings) == store.FORMAT_VERSION


def test_an_index_of_a_format_this_build_cannot_read_is_rebuilt_before_serving(make_corpus, tmp_path):
    settings = _built_with_format(make_corpus, tmp_path, 2)
    service, refresh = Container(settings).serving_service()
    assert refresh is None  # nothing to answer from: ingested first
    assert _live_format(settings) == store.FORMAT_VERSION
