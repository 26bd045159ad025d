"""Engine, sessions and start-up migration of the store.

``open_database(url)`` is the one entry point: it creates the async engine
(SQLite gets WAL and a busy timeout; PostgreSQL a connection pool, pre-ping and an
``application_name``), applies the Alembic migrations in ``storage/migrations`` up to
head, and returns a :class:`Database`. ``retry_transaction`` runs a unit of work again after
a PostgreSQL deadlock or serialization failure.

On PostgreSQL the migrations run under a session-level advisory lock
(``pg_advisory_lock(MIGRATION_LOCK_KEY)``) taken on the very connection that runs
Alembic and released after, so two processes starting together on a fresh database
never race: the second waits, then finds the schema at head.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Fixed key of the PostgreSQL advisory lock held while migrating ("rb-migr" as a 64-bit int).
MIGRATION_LOCK_KEY = 0x72622D6D69677200


T = TypeVar("T")

Session = AsyncSession
"""The session type storage functions take (``bot/`` annotates with it; only ``storage/`` imports SQLAlchemy)."""


@dataclass
class Database:
    """An opened store: ``engine`` plus ``sessions`` (``async_sessionmaker``, ``expire_on_commit=False``)."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The unit of work: a session inside one transaction (``async with session.begin()``).

        Committed when the block ends, rolled back when it raises. Reads use it too (the
        transaction then only reads). Storage functions called inside never commit.
        """
        async with self.sessions() as session, session.begin():
            yield session

    async def retrying(self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 5) -> T:
        """Run ``await work(session)`` in one transaction, again from scratch after a PostgreSQL
        deadlock or serialization failure (:func:`retry_transaction`); returns what ``work`` returned."""
        return await retry_transaction(self.sessions, work, attempts=attempts)

    async def close(self) -> None:
        """Dispose of the engine's connections."""
        await self.engine.dispose()


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


# Alembic's ``alembic.context`` is a module-level proxy: two migrations interleaving in one
# Python process (two bots in one event loop, as the shard tests run them) would trip over it.
_MIGRATION_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _migration_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _MIGRATION_LOCKS.get(loop)
    if lock is None:
        lock = _MIGRATION_LOCKS[loop] = asyncio.Lock()
    return lock


async def migrate_database(engine: AsyncEngine) -> None:
    """Apply the Alembic migrations up to head on ``engine``: one migration at a time per event loop
    (Alembic's context is process-global), then as :func:`_migrate`."""
    async with _migration_lock():
        await _migrate(engine)


async def _migrate(engine: AsyncEngine) -> None:
    """Apply the Alembic migrations up to head on ``engine`` (one transaction).

    On PostgreSQL the work is done under ``pg_advisory_lock(MIGRATION_LOCK_KEY)`` held by
    the migrating connection: a concurrent migrator blocks until this one committed, then
    finds nothing to do. The lock is released (and would be by PostgreSQL anyway when the
    connection closes) whether the migration succeeded or raised.
    """
    if engine.dialect.name != "postgresql":
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
        return
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await conn.commit()  # a session-level lock: it outlives this tiny transaction
        try:
            await conn.run_sync(_upgrade)
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            await conn.commit()


def _make_parent_folder(path: str) -> None:
    """Create the folder a SQLite database file at ``path`` (``~`` expanded) goes in, if missing."""
    Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)


async def open_database(
    url: str,
    *,
    migrate: bool = True,
    pool_size: int = 10,
    pool_pre_ping: bool = True,
    application_name: str = "release-bot",
) -> Database:
    """Open (and by default migrate to head) the database at SQLAlchemy ``url``.

    For a file-backed SQLite URL the parent folder is created; the pool options do not
    apply to SQLite. For PostgreSQL (``postgresql+asyncpg://…``) ``pool_size`` is the
    number of pooled connections (as many again may overflow briefly), ``pool_pre_ping``
    tests a pooled connection before use (a restarted server is survived), and
    ``application_name`` is sent as an asyncpg ``server_settings`` entry (shown in
    ``pg_stat_activity``); a plain ``postgresql://`` or ``postgres://`` URL uses asyncpg.
    Raises ``sqlalchemy.exc.ArgumentError`` for a malformed URL, and the driver's error
    (e.g. ``OSError``, ``asyncpg`` exceptions) when the server cannot be reached while migrating.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):  # a plain libpq-style URL: the async driver installed
        parsed = parsed.set(drivername="postgresql+asyncpg")
    backend = parsed.get_backend_name()
    is_sqlite = backend == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        await asyncio.to_thread(_make_parent_folder, parsed.database)
    kwargs: dict[str, object] = {}
    if is_sqlite:
        kwargs["connect_args"] = {"timeout": 30}
    elif backend == "postgresql":
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=pool_pre_ping)
        if parsed.get_driver_name() == "asyncpg":
            kwargs["connect_args"] = {"server_settings": {"application_name": application_name}}
    engine = create_async_engine(parsed, **kwargs)
    if is_sqlite:

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            if parsed.database and parsed.database != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    if migrate:
        try:
            await migrate_database(engine)
        except BaseException:
            await engine.dispose()
            raise
    return Database(engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False))


# SQLSTATEs after which PostgreSQL asks the client to run the whole transaction again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE carried by ``exc`` (a SQLAlchemy ``DBAPIError`` or a driver error, searched through
    ``.orig`` and ``__cause__``), or None when it has none (e.g. any SQLite error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str):
            return code
        current = getattr(current, "orig", None) or current.__cause__
    return None


#: a write the database refused for want of space or permission: SQLite's message → why (SQLite's
#: result codes SQLITE_FULL and SQLITE_READONLY, "Result and Error Codes"), then PostgreSQL's SQLSTATE
#: (Appendix A: 53100 disk_full, 25006 read_only_sql_transaction) → why
UNWRITABLE_SQLITE = {
    "database or disk is full": "its disk is full",
    "attempt to write a readonly database": "it is read-only",
}
UNWRITABLE_SQLSTATES = {"53100": "its disk is full", "25006": "it is read-only"}


def unwritable_reason(exc: BaseException) -> str | None:
    """Why the database refused a write for want of disk space or permission — ``"its disk is full"``
    or ``"it is read-only"`` — searched through ``exc``'s ``.orig`` and ``__cause__`` chain (SQLite's
    ``sqlite3.OperationalError`` messages, PostgreSQL's SQLSTATE); None for any other error.

    Such an error changes nothing (the transaction is rolled back) and passes by itself once space
    is freed or the file system is writable again: callers report it as such instead of as a bug.
    """
    code = sqlstate(exc)
    if code in UNWRITABLE_SQLSTATES:
        return UNWRITABLE_SQLSTATES[code]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlite3.Error):
            message = str(current).lower()
            for text, reason in UNWRITABLE_SQLITE.items():
                if message.startswith(text):
                    return reason
        current = getattr(current, "orig", None) or current.__cause__
    return None


#: SQLSTATE classes and codes of a PostgreSQL server gone or going: 08 connection exception, 57P01
#: admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (PostgreSQL, Appendix A)
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def store_failed(exc: BaseException) -> bool:
    """True when ``exc`` says the database itself failed — unreachable (a refused or dropped
    connection), shutting down or starting up, or refusing writes (:func:`unwritable_reason`) — rather
    than the statement: the same work succeeds once the database is back. Searched through ``.orig``
    and ``__cause__`` like :func:`sqlstate`; SQLAlchemy marks a dropped connection ``connection_invalidated``."""
    code = sqlstate(exc)
    if code is not None and (code.startswith("08") or code in UNAVAILABLE_SQLSTATES):
        return True
    if unwritable_reason(exc) is not None:
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) or getattr(current, "connection_invalidated", False):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def is_retryable(exc: BaseException) -> bool:
    """True for a PostgreSQL deadlock (40P01) or serialization failure (40001): run the transaction again."""
    return sqlstate(exc) in RETRYABLE_SQLSTATES


async def retry_transaction(
    sessions: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = 5,
    max_backoff: float = 0.5,
) -> T:
    """Run ``await work(session)`` in a new session and commit it; return what ``work`` returned.

    When the transaction fails with a PostgreSQL deadlock or serialization failure
    (SQLSTATE 40P01 / 40001, :func:`is_retryable`) it is rolled back and run again from
    scratch in a fresh session, up to ``attempts`` times in all, after a random backoff of
    at most ``max_backoff`` seconds (growing per attempt). ``work`` must therefore be safe to
    run again (read what it needs inside the transaction). Any other error, or the last
    retryable one, is raised unchanged.
    """
    retrying = AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.02, max=max_backoff),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            async with sessions() as session:
                result = await work(session)
                await session.commit()
    return result
