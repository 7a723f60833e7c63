-- The shared index in PostgreSQL + pgvector (service/index/pg_store.py). `{schema}` is the
-- Postgres schema named by FOOTNOTE_STORE_SCHEMA; every statement is idempotent.
--
-- A document revision (one document id at one content hash, segmented and embedded by one
-- format/model) is written once and shared by every version that contains it, so an ingest
-- re-embeds only changed files. A version lists its revisions; `live` points at the version
-- being served. `footnote ingest` writes new revisions, the version and the pointer in one
-- transaction, under an advisory lock.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}.revisions (
    id          bigserial PRIMARY KEY,
    document    text    NOT NULL,
    sha256      text    NOT NULL,
    format      integer NOT NULL,
    embed_model text    NOT NULL,
    text        text    NOT NULL,
    sentences   integer NOT NULL,
    UNIQUE (document, sha256, format, embed_model)
);

CREATE TABLE IF NOT EXISTS {schema}.sentences (
    revision   bigint  NOT NULL REFERENCES {schema}.revisions (id) ON DELETE CASCADE,
    n          integer NOT NULL,  -- 1-based number within its document
    start_char integer NOT NULL,
    end_char   integer NOT NULL,
    text       text    NOT NULL,
    embedding  vector(384) NOT NULL,  -- L2-normalised all-MiniLM-L6-v2
    tsv        tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    PRIMARY KEY (revision, n)
);
CREATE INDEX IF NOT EXISTS sentences_tsv ON {schema}.sentences USING gin (tsv);

CREATE TABLE IF NOT EXISTS {schema}.versions (
    id         bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    documents  integer NOT NULL,
    sentences  integer NOT NULL,
    bm25       bytea  -- the version's BM25 index (bm25s files, gzipped tar): replicas load it
);
ALTER TABLE {schema}.versions ADD COLUMN IF NOT EXISTS bm25 bytea;

CREATE TABLE IF NOT EXISTS {schema}.version_documents (
    version   bigint  NOT NULL REFERENCES {schema}.versions (id) ON DELETE CASCADE,
    document  text    NOT NULL,
    revision  bigint  NOT NULL REFERENCES {schema}.revisions (id),
    size      bigint  NOT NULL,
    mtime_ns  bigint  NOT NULL,
    first_row integer NOT NULL,  -- row of its first sentence in the version's sentence order
    PRIMARY KEY (version, document)
);
CREATE INDEX IF NOT EXISTS version_documents_revision ON {schema}.version_documents (revision);

CREATE TABLE IF NOT EXISTS {schema}.live (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint REFERENCES {schema}.versions (id)
);
