"""The database backend of a test run: SQLite (default) or PostgreSQL.

``scripts/test.sh`` runs the whole suite twice: once with ``RELEASE_BOT_TEST_DATABASE_URL``
unset (SQLite files under each test's ``tmp_path``) and once with it set to a PostgreSQL
server URL it started itself (``postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres``).
Every test that needs a database URL takes it from :func:`database_url`, so the
PostgreSQL pass really runs it on PostgreSQL.

On PostgreSQL each URL names a database of its own: a migrated one, copied from a template
migrated once per session (``CREATE DATABASE … TEMPLATE``) or recycled from an earlier
test, or an empty one for tests of the migrations themselves. After the test
(:func:`drop_test_databases`, called by an autouse fixture in ``tests/conftest.py``) an
empty one is dropped and a migrated one is recycled: its other connections are ended,
every table but ``alembic_version`` emptied and every sequence restarted, so the next
test gets exactly what a fresh copy would be, for a few milliseconds instead of the
~100 ms a CREATE + DROP costs.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot
    from fakes.stack import Stack

ENV = "RELEASE_BOT_TEST_DATABASE_URL"
TEMPLATE = "release_bot_tmpl"

_lock = threading.Lock()
_template_ready = False
_created: list[tuple[str, bool]] = []  # (database, migrated) made by database_url and still in use
_free: list[str] = []  # migrated databases emptied after their test, ready to be handed out again
_reset_sql: str | None = None  # empties a migrated database: built from the template's catalogue


def server_url() -> str | None:
    """The PostgreSQL server URL of this run (``ENV``), or None on the SQLite pass."""
    return os.environ.get(ENV) or None


def backend() -> str:
    """``"postgresql"`` or ``"sqlite"``: the backend every test database of this run uses."""
    return "postgresql" if server_url() else "sqlite"


def postgresql_only(reason: str):
    """Mark a test of PostgreSQL-only behaviour (``reason`` says which); the SQLite pass skips it, the
    PostgreSQL pass of ``scripts/test.sh`` runs it."""
    return pytest.mark.skipif(backend() != "postgresql", reason=f"PostgreSQL only: {reason}")


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


def _server_url() -> str:
    """The PostgreSQL server URL of this run; only called on the PostgreSQL pass."""
    url = server_url()
    assert url is not None, f"{ENV} is not set: this is the SQLite pass"
    return url


def _asyncpg_dsn(database: str) -> str:
    url = make_url(_server_url()).set(drivername="postgresql", database=database)
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

    async def build() -> str:
        import asyncpg

        await _admin(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)', f'CREATE DATABASE "{TEMPLATE}"')
        database = await open_database(_pg_url(TEMPLATE))
        await database.close()
        conn = await asyncpg.connect(_asyncpg_dsn(TEMPLATE), timeout=10)
        try:
            tables = [
                r[0]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            ]
            sequences = [
                r[0] for r in await conn.fetch("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
            ]
        finally:
            await conn.close()
        return "".join(
            ["SET lock_timeout = '5s'; SET session_replication_role = replica; "]
            + [f'DELETE FROM "{t}"; ' for t in tables]
            + [f'ALTER SEQUENCE "{q}" RESTART; ' for q in sequences]
        )

    global _reset_sql
    _reset_sql = _run(build())
    _template_ready = True


async def _recycle(names: list[str]) -> list[str]:
    """Empty each migrated database in ``names`` for reuse; returns those that could not be (to drop)."""
    import asyncpg

    failed = []
    for name in names:
        try:
            conn = await asyncpg.connect(_asyncpg_dsn(name), timeout=10)
            try:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                await conn.execute(_reset_sql)
            finally:
                await conn.close()
        except Exception:  # a lock that would not go, a broken database: drop it instead
            failed.append(name)
    return failed


def _pg_url(database: str) -> str:
    return make_url(_server_url()).set(database=database).render_as_string(hide_password=False)


def database_url(tmp_path: Path, name: str = "test", *, migrated: bool = True) -> str:
    """A SQLAlchemy async URL of a database of its own for this test.

    SQLite: ``sqlite+aiosqlite:///{tmp_path}/{name}.db`` (the file is created on first open;
    ``migrated`` changes nothing since ``open_database`` migrates). PostgreSQL: a new
    database, already migrated to head when ``migrated`` (copied from the session's
    template or recycled), empty otherwise; dropped or recycled after the test. Raises the driver's error when
    the PostgreSQL server cannot be reached (the PostgreSQL pass never falls back to SQLite).
    """
    if server_url() is None:
        return f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}"
    with _lock:
        if migrated and _free:
            db_name = _free.pop()
        else:
            db_name = f"t_{name.lower()[:20]}_{uuid.uuid4().hex[:12]}"
            if migrated:
                _ensure_template()
                _run(_admin(f'CREATE DATABASE "{db_name}" TEMPLATE "{TEMPLATE}"'))
            else:
                _run(_admin(f'CREATE DATABASE "{db_name}"'))
        _created.append((db_name, migrated))
    return _pg_url(db_name)


def created_count() -> int:
    """How many test databases exist so far: pass it to :func:`drop_test_databases` to drop only later ones."""
    with _lock:
        return len(_created)


def drop_test_databases(since: int = 0, *, recycle: bool = True) -> None:
    """Give back the PostgreSQL databases :func:`database_url` handed out after the first ``since`` ones.

    Migrated ones are emptied for reuse when ``recycle`` (see the module docstring), the
    others dropped; connections still open to them are ended either way. Databases made by
    a module- or session-scoped fixture are handed out before a test's ``created_count()``
    and so survive that test; the session end drops everything (``since=0, recycle=False``).
    """
    with _lock:
        given, _created[since:] = list(_created[since:]), []
        if server_url() is None or not (given or (_free and not recycle)):
            return
        reuse = [n for n, migrated in given if migrated and recycle]
        drop = [n for n, migrated in given if not (migrated and recycle)]
        if reuse:
            failed = _run(_recycle(reuse))
            drop += failed
            _free.extend(n for n in reuse if n not in failed)
        if not recycle:
            drop += _free
            _free.clear()
        if drop:
            _run(_admin(*(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in drop)))


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


def running_bot(stack: Stack) -> ReleaseBot:
    """``stack.bot``, the bot :meth:`fakes.stack.Stack.start_bot` started (fails the test when none runs)."""
    assert stack.bot is not None, "the stack's bot is not running: call start_bot() first"
    return stack.bot
