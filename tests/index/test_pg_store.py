"""The shared index in a real PostgreSQL + pgvector (service/index/pg_store.py)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from service.index.pg_store import PgIndexStore
from service.index.store import IndexMissing, IngestBusy
from service.index.stores import StoreUnavailable
from service.settings import Settings

QUESTION = "How many countries pledged to ensure Ukraine's security after the conflict ended?"


def _count(settings: Settings, table: str) -> int:
    with psycopg.connect(settings.store) as conn:
        return conn.execute(f"SELECT count(*) FROM {settings.store_schema}.{table}").fetchone()[0]


def test_settings_choose_the_store(tmp_path):
    from service.container import Container

    assert not Container(Settings(data_dir=tmp_path)).store.shared


def test_search_ranks_like_the_file_index(pg_settings, seed_retriever, pg_store):
    store = pg_store()
    assert isinstance(store, PgIndexStore) and store.shared
    report = store.ingest(pg_settings.docs_dir)
    assert report.sentences == len(seed_retriever.index.sentences) and report.embedded == report.sentences

    retriever = store.open_retriever()
    assert retriever.index.sentences == seed_retriever.index.sentences
    assert retriever.index.texts == seed_retriever.index.texts
    for question in (QUESTION, "Who called for support from Donald Trump?", "zebra quantum teapot"):
        ours = retriever.retrieve(question, 8)
        files = seed_retriever.retrieve(question, 8)
        assert [h.sentence for h in ours] == [h.sentence for h in files]
        assert [h.score for h in ours] == pytest.approx([h.score for h in files], abs=1e-4)
        assert [h.dense for h in ours] == pytest.approx([h.dense for h in files], abs=1e-4)
    first = retriever.retrieve(QUESTION, 1)[0].sentence
    assert "26 countries" in first.text
    assert retriever.index.texts[first.document][first.start : first.end] == first.text


def test_only_changed_files_are_embedded_again(pg_settings, make_corpus, pg_store):
    docs = make_corpus({"a.txt": "Alpha is the first letter. It starts the alphabet.",
                        "b.txt": "Beta comes second. Gamma comes third."})
    store = pg_store()
    first = store.ingest(docs)
    assert (first.added, first.embedded) == (["a.txt", "b.txt"], 4)
    assert store.ingest(docs).up_to_date

    (docs / "b.txt").write_text("Beta comes second. Delta comes fourth. Epsilon is fifth.", encoding="utf-8")
    (docs / "a.txt").unlink()
    (docs / "c.txt").write_text("Zeta is sixth.", encoding="utf-8")
    second = store.ingest(docs)
    assert (second.added, second.changed, second.removed) == (["c.txt"], ["b.txt"], ["a.txt"])
    assert second.embedded == 4 and second.unchanged == 0
    index = store.open_retriever().index
    assert sorted(index.manifest) == ["b.txt", "c.txt"]
    assert [s.text for s in index.sentences_of("b.txt")][1] == "Delta comes fourth."

    (docs / "c.txt").touch()  # same content, new mtime: nothing to embed
    assert store.ingest(docs).up_to_date
    (docs / "c.txt").write_text("Eta is seventh.", encoding="utf-8")  # same size, new content
    third = store.ingest(docs)
    assert (third.changed, third.embedded, third.unchanged) == (["c.txt"], 1, 1)


def test_a_failed_publish_leaves_the_previous_version_serving(pg_settings, make_corpus, monkeypatch, pg_store):
    docs = make_corpus({"a.txt": "The old text is here."})
    store = pg_store()
    store.ingest(docs)
    before = store.live_version()
    revisions, sentences = _count(pg_settings, "revisions"), _count(pg_settings, "sentences")

    (docs / "b.txt").write_text("A new document arrives.", encoding="utf-8")
    real_sql = store.sql

    def crash_at_the_pointer(text: str):  # noqa: ANN202 - dies after revisions and version are written
        if "INSERT INTO {schema}.live" in text:
            raise KeyboardInterrupt("killed mid-publish")
        return real_sql(text)

    monkeypatch.setattr(store, "sql", crash_at_the_pointer)
    with pytest.raises(KeyboardInterrupt):
        store.ingest(docs)
    monkeypatch.undo()

    assert store.live_version() == before
    assert sorted(store.open_retriever().index.manifest) == ["a.txt"]
    assert (_count(pg_settings, "revisions"), _count(pg_settings, "sentences")) == (revisions, sentences)
    assert store.ingest(docs).added == ["b.txt"]  # the next ingest completes the work


def test_a_second_ingest_is_refused_while_one_runs(pg_settings, make_corpus, pg_store):
    docs = make_corpus({"a.txt": "One document."})
    store = pg_store()
    store.ingest(docs)
    with psycopg.connect(pg_settings.store, autocommit=True) as other:  # another ingest holds the lock
        other.execute("SELECT pg_advisory_lock(hashtext(%s))", [f"footnote-ingest:{pg_settings.store_schema}"])
        with pytest.raises(IngestBusy, match="another `footnote ingest`"):
            store.ingest(docs)
    assert store.ingest(docs).up_to_date  # the lock died with that session


def test_concurrent_ingests_publish_whole_versions(pg_settings, make_corpus, pg_store):
    docs = make_corpus({f"d{i}.txt": f"Document {i} talks about topic {i}. It has two sentences."
                        for i in range(6)})
    store = pg_store()
    outcomes: list[object] = []

    def run() -> None:
        try:
            outcomes.append(store.ingest(docs))
        except IngestBusy as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    published = [o for o in outcomes if not isinstance(o, IngestBusy)]
    assert published and all(not isinstance(o, Exception) for o in published)
    index = store.open_retriever().index
    assert len(index.manifest) == 6 and len(index.sentences) == 12
    assert _count(pg_settings, "sentences") == 12  # nothing written twice


def test_search_within_documents_and_postgres_full_text(pg_settings, make_corpus, pg_store):
    docs = make_corpus({"bridges.txt": "The Oresund Bridge opened to traffic on 1 July 2000.",
                        "tunnels.txt": "The Gotthard Base Tunnel is 57 kilometres long."})
    settings = pg_settings.model_copy(update={"store_keyword": "postgres"})
    store = pg_store(settings)
    store.ingest(docs)
    retriever = store.open_retriever()
    hits = retriever.retrieve("Gotthard tunnel length", 2)
    assert hits[0].sentence.document == "tunnels.txt" and hits[0].keyword > 0
    only = retriever.retrieve("Gotthard tunnel length", 2, ["bridges.txt"])
    assert [h.sentence.document for h in only] == ["bridges.txt"] and only[0].keyword == 0


def test_an_empty_database_says_to_ingest(pg_settings, pg_store):
    with pytest.raises(IndexMissing, match="footnote ingest"):
        pg_store().live_version()


def test_an_unreachable_database_is_reported_not_hung(tmp_path, make_corpus):
    docs = make_corpus({"a.txt": "One document."})
    settings = Settings(store=f"postgresql://postgres@/postgres?host={tmp_path}&port=1", store_schema="nowhere")
    store = PgIndexStore(settings, lambda for_queries: None)
    try:
        with pytest.raises(StoreUnavailable, match="unreachable"):
            store.live_version()
        with pytest.raises(StoreUnavailable, match="unreachable"):
            store.ingest(docs)
    finally:
        store.close()


def test_an_eval_corpus_gets_its_own_schema(pg_settings, make_corpus, pg_store):
    from service.evals.runner import build_service

    docs = make_corpus({"a.txt": "The eval corpus has one sentence."}, name="evalcorpus")
    service = build_service(pg_settings, docs, backend="extractive")
    assert set(service.index.manifest) == {"a.txt"}
    assert service.settings.store_schema.startswith(f"{pg_settings.store_schema}_eval_")
    with pytest.raises(IndexMissing):  # the live schema was left alone
        pg_store().live_version()


def test_replicas_load_the_keyword_index_the_ingest_stored(pg_settings, make_corpus, monkeypatch, pg_store):
    docs = make_corpus({"tunnels.txt": "The Gotthard Base Tunnel is 57 kilometres long."})
    store = pg_store()
    store.ingest(docs)
    with psycopg.connect(pg_settings.store) as conn:
        packed = conn.execute(f"SELECT bm25 FROM {pg_settings.store_schema}.versions").fetchone()[0]
    assert packed

    from service.index import keyword

    def no_build(sentences):  # noqa: ANN001, ANN202
        raise AssertionError("a replica rebuilt BM25 instead of loading the stored one")

    monkeypatch.setattr(keyword, "build", no_build)
    hit = store.open_retriever().retrieve("Gotthard", 1)[0]
    assert hit.sentence.document == "tunnels.txt" and hit.keyword > 0
