"""The store's side of the operations endpoints (docs/operations.md, "Health" and "Metrics").

:func:`ping` is "the database answers" (``SELECT 1``); :func:`migration_state` compares the
Alembic revision stored in ``alembic_version`` with the head of ``storage/migrations``;
:func:`time_statements` reports every SQL statement's duration, by kind, through SQLAlchemy's
``before_cursor_execute`` / ``after_cursor_execute`` engine events (SQLAlchemy Core, "Events").
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from storage.db import MIGRATIONS_DIR, Database

STATEMENT_KINDS = ("select", "insert", "update", "delete", "other")
"""The bounded label :func:`time_statements` reports a statement under."""

_START = "release_bot_statement_started"


async def ping(db: Database) -> None:
    """``SELECT 1`` on a connection of ``db``'s pool: returns when the database answers, raises the
    driver's error (wrapped by SQLAlchemy, e.g. ``OperationalError``) when it does not."""
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


@functools.cache
def head_revision() -> str:
    """The head revision of ``storage/migrations`` (read once from the migration scripts)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if head is None:  # pragma: no cover - the repository always has migrations
        raise RuntimeError("storage/migrations has no head revision")
    return head


@dataclass(frozen=True)
class MigrationState:
    """``current``: the revision stored in ``alembic_version`` (None: none, a database never migrated);
    ``head``: the newest revision this code knows. ``is_current`` when they are equal."""

    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        """True when the database is migrated to this code's head."""
        return self.current == self.head


async def migration_state(db: Database) -> MigrationState:
    """``db``'s Alembic revision against the code's head, read on a connection of its own. A missing
    ``alembic_version`` table reads as ``current=None``; other errors of the database propagate."""
    async with db.engine.connect() as conn:
        try:
            current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        except DBAPIError as exc:
            if _missing_table(exc):
                return MigrationState(None, head_revision())
            raise
    return MigrationState(None if current is None else str(current), head_revision())


def _missing_table(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return "no such table" in message or "does not exist" in message or "undefined" in message


def statement_kind(statement: str) -> str:
    """``select`` | ``insert`` | ``update`` | ``delete`` | ``other`` from a statement's first word
    (``WITH …`` and ``PRAGMA``/``BEGIN``/``SAVEPOINT`` are ``other``)."""
    word = statement.lstrip(" \t\r\n(").split(None, 1)[0].lower() if statement.strip() else ""
    return word if word in STATEMENT_KINDS else "other"


def time_statements(db: Database, observe: Callable[[str, float], object]) -> Callable[[], None]:
    """Call ``observe(kind, seconds)`` after every SQL statement ``db`` runs (``kind`` from
    :func:`statement_kind`; seconds measured with ``time.perf_counter`` around the driver's execute).
    A statement that raises is not observed. Returns a function that removes the listeners."""
    engine = db.engine.sync_engine

    def before(conn: Connection, _cursor: Any, _statement: str, *_args: Any) -> None:
        conn.info.setdefault(_START, []).append(time.perf_counter())

    def after(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        started: list[float] = conn.info.get(_START) or []
        if started:
            observe(statement_kind(statement), time.perf_counter() - started.pop())

    def errored(context: Any) -> None:
        conn = getattr(context, "connection", None)
        started = conn.info.get(_START) if conn is not None else None
        if started:
            started.pop()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", errored)

    def remove() -> None:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
        event.remove(engine, "handle_error", errored)

    return remove
