"""The database backend of a test run: SQLite (default) or PostgreSQL.

``scripts/test.sh`` runs the whole suite twice: once with ``RELEASE_BOT_TEST_DATABASE_URL``
unset (SQLite files under each test's ``tmp_path``) and once with it set to a PostgreSQL
server URL it started itself (``postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres``).
Every test that needs a database URL takes it from :func:`database_url`, so the
PostgreSQL pass really runs it on PostgreSQL.

On PostgreSQL each URL names a new database: a copy of a template migrated once per
session (``CREATE DATABASE … TEMPLATE``, milliseconds), or an empty one for tests of the
migrations themselves. Databases made during a test are dropped after it
(:func:`drop_test_databases`, called by an autouse fixture in ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

ENV = "RELEASE_BOT_TEST_DATABASE_URL"
TEMPLATE = "release_bot_tmpl"

_lock = threading.Lock()
_template_ready = False
_created: list[str] = []


def server_url() -> str | None:
    """The PostgreSQL server URL of this run (``ENV``), or None on the SQLite pass."""
    return os.environ.get(ENV) or None


def backend() -> str:
    """``"postgresql"`` or ``"sqlite"``: the backend every test database of this run uses."""
    return "postgresql" if server_url() else "sqlite"


def sqlite_only(reason: str):
    """Mark a test as inherently SQLite-specific (``reason`` says why); it is skipped on the PostgreSQL pass."""
    return pytest.mark.skipif(backend() != "sqlite", reason=f"SQLite only: {reason}")


def _run(coro):
    """Run ``coro`` to completion on a private event loop in a worker thread (callable from sync or async code)."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="test-db-admin")
    thread.start()
    thread.join(60)
    if thread.is_alive():
        raise TimeoutError("PostgreSQL administration did not finish within 60 s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _asyncpg_dsn(database: str) -> str:
    url = make_url(server_url()).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def _admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn("postgres"), timeout=10)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def _ensure_template() -> None:
    """Create and migrate the template database once per process."""
    global _template_ready
    if _template_ready:
        return
    from storage.db import open_database

    async def build() -> None:
        await _admin(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)', f'CREATE DATABASE "{TEMPLATE}"')
        database = await open_database(_pg_url(TEMPLATE))
        await database.close()

    _run(build())
    _template_ready = True


def _pg_url(database: str) -> str:
    return make_url(server_url()).set(database=database).render_as_string(hide_password=False)


def database_url(tmp_path: Path, name: str = "test", *, migrated: bool = True) -> str:
    """A SQLAlchemy async URL of a database of its own for this test.

    SQLite: ``sqlite+aiosqlite:///{tmp_path}/{name}.db`` (the file is created on first open;
    ``migrated`` changes nothing since ``open_database`` migrates). PostgreSQL: a new
    database, already migrated to head when ``migrated`` (copied from the session's
    template), empty otherwise; dropped after the test. Raises the driver's error when
    the PostgreSQL server cannot be reached (the PostgreSQL pass never falls back to SQLite).
    """
    if server_url() is None:
        return f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}"
    with _lock:
        db_name = f"t_{name.lower()[:20]}_{uuid.uuid4().hex[:12]}"
        if migrated:
            _ensure_template()
            _run(_admin(f'CREATE DATABASE "{db_name}" TEMPLATE "{TEMPLATE}"'))
        else:
            _run(_admin(f'CREATE DATABASE "{db_name}"'))
        _created.append(db_name)
    return _pg_url(db_name)


def created_count() -> int:
    """How many test databases exist so far: pass it to :func:`drop_test_databases` to drop only later ones."""
    with _lock:
        return len(_created)


def drop_test_databases(since: int = 0) -> None:
    """Drop the PostgreSQL databases :func:`database_url` made after the first ``since`` ones.

    Connections still open to them are ended (``WITH (FORCE)``). Databases made by a
    module- or session-scoped fixture are set up before a test's ``created_count()`` and
    so survive that test; the session end drops them all (``since=0``).
    """
    with _lock:
        names, _created[since:] = list(_created[since:]), []
    if names and server_url() is not None:
        _run(_admin(*(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names)))


def drop_template() -> None:
    """Drop the session's template database (end of the session)."""
    global _template_ready
    if _template_ready and server_url() is not None:
        _run(_admin(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)'))
        _template_ready = False


async def create_stack(data_dir: Path, **kwargs):
    """``fakes.stack.Stack.create(data_dir, **kwargs)`` with its bot on this run's backend (:func:`database_url`)."""
    from fakes.stack import Stack

    return await Stack.create(data_dir, database_url=database_url(data_dir, "stack"), **kwargs)
