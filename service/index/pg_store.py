"""The shared index in PostgreSQL + pgvector: several `footnote serve` replicas read it, one
`footnote ingest` writes it (`FOOTNOTE_STORE=postgresql://…`; tables in pg_schema.sql).

We talk to Postgres with psycopg directly rather than through LlamaIndex's PGVectorStore: that
store commits every `add()` on its own and knows no versions, so it cannot publish a whole
corpus update in one transaction behind a pointer, and it pulls in SQLAlchemy, asyncpg and
psycopg2 besides. Scores stay ours: pgvector gives exact cosine similarities (no approximate
index: HNSW with ef_search=1000 found 0.66 of the true neighbours at 100k sentences when
measured for issue 15), the keyword side is BM25
over the version's sentences (built once by the ingest, stored with the version, loaded by
each replica; Postgres full-text ranking measured worse,
see README "Running several replicas"), and hybrid.relative_score_fusion mixes them exactly as
for the file index.

Guarantees, as for the file index: only changed files are re-embedded (a revision of a
document is stored once and shared by the versions that contain it); a version is published
in one transaction, so an ingest killed at any moment leaves the previous version live; a
session advisory lock keeps a second ingest out (IngestBusy), and the database releases it if
the ingest dies.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.index.embedding import MODEL_ID, MiniLMEncoder
from service.index.hybrid import Hit, UnknownDocuments, relative_score_fusion
from service.index.store import FORMAT_VERSION, DocEntry, IndexCorrupt, IndexMissing, IngestBusy
from service.index.stores import EncoderFactory, Progress, StoreUnavailable
from service.ingest.corpus import read_document
from service.ingest.pipeline import IngestReport, _quick_unchanged, no_documents, read_sources, skip
from service.ingest.segment import segment
from service.records import Sentence
from service.settings import Settings

SCHEMA_FILE = Path(__file__).with_name("pg_schema.sql")
KEEP_VERSIONS = 3  # the live one and two before it: replicas may still be reading those
CONNECT_TIMEOUT_S = 3
POOL_TIMEOUT_S = 3.0  # longest wait for a connection before a request gets a 503


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise StoreUnavailable(
            "FOOTNOTE_STORE names a PostgreSQL database, but psycopg is not installed: "
            "pip install -e '.[postgres]'") from exc
    return psycopg


def describe(url: str) -> str:
    """The database a URL names, without its password (for messages and logs)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception:
        return "the FOOTNOTE_STORE database"
    where = info.get("host") or "localhost"
    return f"postgresql database {info.get('dbname') or info.get('user') or ''!s} on {where}" + (
        f":{info['port']}" if info.get("port") else "")


def _vector(v: np.ndarray) -> str:
    """pgvector's text form; queries send one vector, so text costs nothing that matters."""
    return "[" + ",".join(f"{x:.7g}" for x in v.tolist()) + "]"


# --------------------------------------------------------------------------- the index view


@dataclass
class PgIndex:
    """One published version, held by each replica: what the routes and citations read.

    Sentence texts and spans live here (a few bytes per sentence); embeddings stay in the
    database and are scanned there."""

    version_id: int
    manifest: dict[str, DocEntry]
    texts: dict[str, str]
    sentences: list[Sentence]
    revisions: np.ndarray  # revision id of each row

    @property
    def version(self) -> str:
        return f"pg-{self.version_id}"

    def sentences_of(self, doc_id: str) -> list[Sentence]:
        entry = self.manifest[doc_id]
        return self.sentences[entry.first : entry.first + entry.count]


def _pack_bm25(sentences: list[Sentence]) -> bytes:
    """The version's BM25 index (bm25s files) as one gzipped tar, for a bytea column."""
    from service.index import keyword

    with tempfile.TemporaryDirectory() as tmp:
        keyword.build(sentences).persist(str(Path(tmp) / "bm25"), show_progress=False)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
            tar.add(Path(tmp) / "bm25", arcname="bm25")
        return buffer.getvalue()


def _unpack_bm25(packed: bytes) -> Any:
    from service.index import keyword

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        return keyword.load(Path(tmp) / "bm25")


# --------------------------------------------------------------------------- the store


class PgIndexStore:
    """The `IndexStore` in PostgreSQL. The container keeps one: it owns the connection pool
    that every request shares."""

    shared = True

    def __init__(self, settings: Settings, encoder: EncoderFactory) -> None:
        _driver()
        self.settings = settings
        self._encoder = encoder
        self.url = settings.store or ""
        self.where = describe(self.url)
        self._schema_name = settings.store_schema
        self._pool: Any = None
        self._pool_lock = threading.Lock()

    # -- SQL helpers -------------------------------------------------------------------------

    def sql(self, text: str) -> Any:
        from psycopg import sql

        return sql.SQL(text).format(schema=sql.Identifier(self._schema_name))

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"the index database ({self.where}) is unreachable: "
                                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")

    def _get_pool(self) -> Any:
        with self._pool_lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                # Connections are checked on checkout, so after a database restart the first
                # request gets a fresh one instead of a dead socket; the pool reconnects in the
                # background while the database is down (callers get StoreUnavailable, not a hang).
                self._pool = ConnectionPool(
                    self.url, min_size=1, max_size=self.settings.store_pool_size,
                    kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "footnote"},
                    check=ConnectionPool.check_connection, timeout=POOL_TIMEOUT_S,
                    name=f"footnote-{self._schema_name}", open=False,
                )
                self._pool.open(wait=False)
            return self._pool

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A pooled connection; database failures come out as StoreUnavailable."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self._get_pool().connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            raise self._unavailable(exc) from exc

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    # -- reading -----------------------------------------------------------------------------

    def live_version(self) -> str:
        return f"pg-{self._live_id()}"

    def _live_id(self, conn: Any = None) -> int:
        if conn is None:
            with self.connection() as c:
                return self._live_id(c)
        row = None
        if conn.execute("SELECT to_regclass(%s)", [f'"{self._schema_name}".live']).fetchone()[0]:
            row = conn.execute(self.sql("SELECT version FROM {schema}.live")).fetchone()
        if row is None or row[0] is None:
            raise IndexMissing(f"no index in {self.where} (schema {self._schema_name}): "
                               "run `footnote ingest` first")
        return int(row[0])

    def load(self, with_bm25: bool = False) -> tuple[PgIndex, bytes | None]:
        """The live version's manifest, texts and sentence spans (and its packed BM25 index),
        read in one snapshot."""
        import psycopg

        with self.connection() as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                with conn.transaction():
                    version = self._live_id(conn)
                    index = self._read_version(conn, version)
                    bm25 = conn.execute(self.sql("SELECT bm25 FROM {schema}.versions WHERE id = %s"),
                                        [version]).fetchone()[0] if with_bm25 else None
            finally:
                conn.isolation_level = None
        return index, (bytes(bm25) if bm25 is not None else None)

    def _read_version(self, conn: Any, version: int) -> PgIndex:
        docs = conn.execute(self.sql(
            "SELECT vd.document, r.sha256, vd.size, vd.mtime_ns, vd.first_row, r.sentences,"
            " r.text, r.id FROM {schema}.version_documents vd"
            " JOIN {schema}.revisions r ON r.id = vd.revision"
            " WHERE vd.version = %s ORDER BY vd.first_row"), [version]).fetchall()
        spans = conn.execute(self.sql(
            "SELECT s.revision, s.n, s.start_char, s.end_char FROM {schema}.version_documents vd"
            " JOIN {schema}.sentences s ON s.revision = vd.revision"
            " WHERE vd.version = %s ORDER BY vd.first_row, s.n"), [version]).fetchall()
        manifest: dict[str, DocEntry] = {}
        texts: dict[str, str] = {}
        doc_of_revision: dict[int, str] = {}
        for document, sha, size, mtime_ns, first, count, text, revision in docs:
            manifest[document] = DocEntry(sha, size, mtime_ns, first, count)
            texts[document] = text
            doc_of_revision[revision] = document
        sentences = []
        for revision, n, start, end in spans:
            document = doc_of_revision[revision]
            sentences.append(Sentence(document, n, start, end, texts[document][start:end]))
        if len(sentences) != sum(e.count for e in manifest.values()):
            raise IndexCorrupt(f"index version {version} in {self.where} is inconsistent "
                               "(sentence counts differ); run `footnote ingest` again")
        revisions = np.fromiter((r for r, *_ in spans), dtype=np.int64, count=len(spans))
        return PgIndex(version, manifest, texts, sentences, revisions)

    def open_retriever(self) -> PgRetriever:
        use_bm25 = self.settings.store_keyword == "bm25"
        index, packed = self.load(with_bm25=use_bm25)
        keyword = None
        if use_bm25 and index.sentences:
            from service.index import keyword as kw

            keys = [s.key for s in index.sentences]
            try:
                keyword = kw.KeywordSearch(_unpack_bm25(packed), keys) if packed else None
            except Exception as exc:  # bm25s raises assorted errors on damaged files
                raise IndexCorrupt(f"the keyword index of version {index.version_id} in {self.where} "
                                   f"is unreadable ({exc}); run `footnote ingest` again") from exc
            if keyword is None:  # published without one: build it here
                keyword = kw.KeywordSearch(kw.build(index.sentences), keys)
        return PgRetriever(self, index, self._encoder(True), keyword)

    # -- writing -----------------------------------------------------------------------------

    def ensure_schema(self, conn: Any) -> None:
        conn.execute(self.sql(SCHEMA_FILE.read_text(encoding="utf-8")))

    def _live_manifest(self, conn: Any) -> dict[str, tuple[DocEntry, int]]:
        """{document: (entry, revision)} of the live version, for revisions this build can reuse."""
        try:
            version = self._live_id(conn)
        except IndexMissing:
            return {}
        rows = conn.execute(self.sql(
            "SELECT vd.document, r.sha256, vd.size, vd.mtime_ns, vd.first_row, r.sentences, r.id"
            " FROM {schema}.version_documents vd JOIN {schema}.revisions r ON r.id = vd.revision"
            " WHERE vd.version = %s AND r.format = %s AND r.embed_model = %s"),
            [version, FORMAT_VERSION, MODEL_ID]).fetchall()
        return {d: (DocEntry(sha, size, mtime, first, count), rev)
                for d, sha, size, mtime, first, count, rev in rows}

    def ingest(self, docs_dir: Path, progress: Progress | None = None, rebuild: bool = False) -> IngestReport:
        """Bring the shared index up to date with `docs_dir`; same report as the file index.
        (`rebuild` is accepted for the interface: versions are checked by the database, there
        are no files to find damage in.)"""
        psycopg = _driver()
        say = progress or (lambda msg: None)
        t0 = time.perf_counter()
        report = IngestReport()
        sources = read_sources(docs_dir, report, say, self.settings.max_document_bytes)
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                   application_name="footnote-ingest")
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from exc
        lock = [f"footnote-ingest:{self._schema_name}"]
        try:
            with conn:
                got = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", lock).fetchone()[0]
                if not got:  # session lock: released by the database if this process dies
                    raise IngestBusy(f"another `footnote ingest` is writing to {self.where} "
                                     f"(schema {self._schema_name})")
                try:
                    self.ensure_schema(conn)
                    return self._ingest_locked(conn, sources, docs_dir, report, say, t0)
                finally:
                    # Released here, not by closing: the server ends a closed session a moment
                    # later, and an ingest started right after this one would find it still held.
                    if not conn.closed and not conn.broken:
                        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", lock)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._unavailable(exc) from exc

    def _ingest_locked(self, conn: Any, sources: list, docs_dir: Path, report: IngestReport,
                       say: Progress, t0: float) -> IngestReport:
        old = self._live_manifest(conn)
        old_entries = {d: e for d, (e, _) in old.items()}
        if old and _quick_unchanged(sources, old_entries):
            report.up_to_date = True
            report.documents = len(old)
            report.sentences = sum(e.count for e in old_entries.values())
            report.seconds = time.perf_counter() - t0
            return report
        known = {(d, sha): (rev, count) for d, sha, rev, count in conn.execute(self.sql(
            "SELECT document, sha256, id, sentences FROM {schema}.revisions"
            " WHERE format = %s AND embed_model = %s"), [FORMAT_VERSION, MODEL_ID]).fetchall()}

        # (document, revision or None, sha256, size, mtime_ns, count); new revisions' data aside
        plan: list[tuple[str, int | None, str, int, int, int]] = []
        fresh: dict[str, tuple[str, list[Sentence]]] = {}  # document -> (text, sentences)
        for i, src in enumerate(sources, start=1):
            doc, reason = read_document(src)
            if doc is None:
                skip(report, say, reason)
                continue
            reuse = known.get((doc.doc_id, doc.sha256))
            previous = old.get(doc.doc_id)
            if reuse is not None:
                plan.append((doc.doc_id, reuse[0], doc.sha256, src.size, src.mtime_ns, reuse[1]))
                if previous is not None and previous[0].sha256 == doc.sha256:
                    report.unchanged += 1
                else:
                    (report.changed if previous is not None else report.added).append(doc.doc_id)
                continue
            doc_sentences = segment(doc.doc_id, doc.text)
            if not doc_sentences:
                report.skipped.append(f"skipped {src.doc_id}: no sentences in it")
                continue
            fresh[doc.doc_id] = (doc.text, doc_sentences)
            plan.append((doc.doc_id, None, doc.sha256, src.size, src.mtime_ns, len(doc_sentences)))
            (report.changed if previous is not None else report.added).append(doc.doc_id)
            if i % 100 == 0 or i == len(sources):
                say(f"read {i}/{len(sources)} files")
        report.removed = sorted(set(old) - {p[0] for p in plan})
        if not plan:
            raise no_documents(docs_dir, report)

        pending = [s for _, group in fresh.values() for s in group]
        vectors = np.zeros((0, 384), np.float32)
        if pending:
            s = self.settings
            say(f"embedding {len(pending)} sentences")
            vectors = self._encoder(False).encode(
                [x.text for x in pending], batch_size=s.embed_batch_size,
                on_batch=lambda done, total: say(f"embedded {done}/{total} sentences")
                if done == total or (done // s.embed_batch_size) % 20 == 0 else None,
            )
            report.embedded = len(pending)

        say(f"publishing to {self.where}")
        version = self._publish(conn, plan, fresh, vectors, say)
        say(f"published version {version}")
        report.documents = len(plan)
        report.sentences = sum(p[5] for p in plan)
        report.seconds = time.perf_counter() - t0
        return report

    def _publish(self, conn: Any, plan: list, fresh: dict[str, tuple[str, list[Sentence]]],
                 vectors: np.ndarray, say: Progress) -> int:
        """Write new revisions, the version (with its packed BM25 index, so replicas load
        rather than build it) and the live pointer in one transaction."""
        from pgvector.psycopg import register_vector

        register_vector(conn)
        sentences_total = sum(p[5] for p in plan)
        with conn.transaction():
            revision_of: dict[str, int] = {}
            offset = 0
            for document, (text, group) in fresh.items():
                sha = next(p[2] for p in plan if p[0] == document)
                revision_of[document] = conn.execute(self.sql(
                    "INSERT INTO {schema}.revisions (document, sha256, format, embed_model, text, sentences)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"),
                    [document, sha, FORMAT_VERSION, MODEL_ID, text, len(group)]).fetchone()[0]
            with conn.cursor().copy(self.sql(
                "COPY {schema}.sentences (revision, n, start_char, end_char, text, embedding)"
                " FROM STDIN WITH (FORMAT BINARY)")) as copy:
                copy.set_types(["bigint", "integer", "integer", "integer", "text", "vector"])
                for document, (_, group) in fresh.items():
                    rev = revision_of[document]
                    for s in group:
                        copy.write_row((rev, s.sentence, s.start, s.end, s.text, vectors[offset]))
                        offset += 1
            version = conn.execute(self.sql(
                "INSERT INTO {schema}.versions (documents, sentences) VALUES (%s, %s) RETURNING id"),
                [len(plan), sentences_total]).fetchone()[0]
            first = 0
            rows = []
            for document, revision, _, size, mtime_ns, count in plan:
                rows.append((version, document, revision or revision_of[document], size, mtime_ns, first))
                first += count
            with conn.cursor().copy(self.sql(
                "COPY {schema}.version_documents (version, document, revision, size, mtime_ns, first_row)"
                " FROM STDIN")) as copy:
                for row in rows:
                    copy.write_row(row)
            say("building keyword index")
            packed = _pack_bm25(self._read_version(conn, version).sentences)
            conn.execute(self.sql("UPDATE {schema}.versions SET bm25 = %s WHERE id = %s"), [packed, version])
            conn.execute(self.sql(
                "INSERT INTO {schema}.live (one, version) VALUES (true, %s)"
                " ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version"), [version])
            # Old versions and the revisions only they used go; the newest few stay for
            # replicas that have not switched yet.
            conn.execute(self.sql(
                "DELETE FROM {schema}.versions WHERE id NOT IN"
                " (SELECT id FROM {schema}.versions ORDER BY id DESC LIMIT %s)"), [KEEP_VERSIONS])
            conn.execute(self.sql(
                "DELETE FROM {schema}.revisions r WHERE NOT EXISTS"
                " (SELECT 1 FROM {schema}.version_documents vd WHERE vd.revision = r.id)"))
        return int(version)


# --------------------------------------------------------------------------- retrieval


class PgRetriever:
    """Hybrid retrieval over one published version: exact cosine in pgvector, BM25 (per
    replica) or Postgres full text for keywords, fused by relative score as for the file index."""

    def __init__(self, store: PgIndexStore, index: PgIndex, encoder: MiniLMEncoder, keyword: Any) -> None:
        self.store = store
        self.index = index
        self._encoder = encoder
        self._keyword = keyword  # KeywordSearch, or None for Postgres full text

    def embed_query(self, question: str) -> np.ndarray:
        return self._encoder.encode([question])[0]

    def similarity(self, text: str, other: str) -> float:
        vectors = self._encoder.encode([text, other])
        return float(np.dot(vectors[0], vectors[1]))

    def _documents(self, documents: Iterable[str] | None) -> list[str] | None:
        if documents is None:
            return None
        docs = list(documents)
        unknown = [d for d in docs if d not in self.index.manifest]
        if unknown:
            raise UnknownDocuments(f"unknown document id(s): {', '.join(unknown)}")
        return docs

    def _mask(self, docs: list[str] | None) -> np.ndarray | None:
        if docs is None:
            return None
        mask = np.zeros(len(self.index.sentences), dtype=bool)
        for d in docs:
            e = self.index.manifest[d]
            mask[e.first : e.first + e.count] = True
        return mask

    def retrieve(self, question: str, top_k: int = 8, documents: Iterable[str] | None = None) -> list[Hit]:
        n = len(self.index.sentences)
        if n == 0:
            return []
        docs = self._documents(documents)
        depth = min(n, max(50, 4 * top_k))
        query = _vector(self.embed_query(question))
        params = {"q": query, "v": self.index.version_id, "docs": docs, "k": depth, "text": question}
        scope = " WHERE vd.version = %(v)s AND (%(docs)s::text[] IS NULL OR vd.document = ANY(%(docs)s))"
        join = (" FROM {schema}.version_documents vd"
                " JOIN {schema}.sentences s ON s.revision = vd.revision")
        keyword: dict[int, float] = {}
        if self._keyword is not None:  # in memory, before taking a connection from the pool
            keyword = dict(self._keyword.search(question, depth, self._mask(docs)))
        with self.store.connection() as conn:
            dense = conn.execute(self.store.sql(
                "SELECT vd.first_row + s.n - 1, 1 - (s.embedding <=> %(q)s::vector)" + join + scope +
                " ORDER BY s.embedding <=> %(q)s::vector LIMIT %(k)s"), params).fetchall()
            cosine = {int(r): float(c) for r, c in dense}
            if self._keyword is None:
                # Any of the question's words (plainto_tsquery would demand all of them).
                matches = conn.execute(self.store.sql(
                    "SELECT vd.first_row + s.n - 1, ts_rank(s.tsv, q.q), 1 - (s.embedding <=> %(q)s::vector)"
                    + join + ", (SELECT replace(plainto_tsquery('english', %(text)s)::text, '&', '|')"
                    "::tsquery AS q) q" + scope + " AND s.tsv @@ q.q ORDER BY 2 DESC LIMIT %(k)s"),
                    params).fetchall()
                for r, rank, c in matches:
                    keyword[int(r)] = float(rank)
                    cosine.setdefault(int(r), float(c))
            else:
                missing = [r for r in keyword if r not in cosine]
                if missing:
                    revs = [int(self.index.revisions[r]) for r in missing]
                    ns = [self.index.sentences[r].sentence for r in missing]
                    extra = conn.execute(self.store.sql(
                        "SELECT s.revision, s.n, 1 - (s.embedding <=> %(q)s::vector) FROM {schema}.sentences s"
                        " WHERE (s.revision, s.n) IN (SELECT * FROM unnest(%(revs)s::bigint[], %(ns)s::int[]))"),
                        {"q": query, "revs": revs, "ns": ns}).fetchall()
                    row_of = {(rv, nn): r for r, rv, nn in zip(missing, revs, ns)}
                    for rv, nn, c in extra:
                        cosine[row_of[(int(rv), int(nn))]] = float(c)
        if not cosine and not keyword:
            return []
        dense_values = [c for _, c in dense]
        rows = np.array(sorted(set(cosine) | set(keyword)), dtype=np.int64)
        cos = np.array([cosine.get(int(r), -1.0) for r in rows])
        dense_range = (min(dense_values), max(dense_values)) if dense_values else (0.0, 1.0)
        ranked = relative_score_fusion(rows, cos, dense_range, keyword, top_k)
        return [Hit(self.index.sentences[int(rows[i])], score, float(cos[i]),
                    keyword.get(int(rows[i]), 0.0), int(rows[i])) for i, score in ranked]
