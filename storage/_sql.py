"""Dialect helpers for race-free writes: ``INSERT … ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL.

Private to ``storage``: the aggregate modules build on them. Only the two supported backends
(SQLite through aiosqlite, PostgreSQL through asyncpg) exist; any other dialect raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base

M = TypeVar("M", bound=Base)
T = TypeVar("T")


def _insert(session: AsyncSession, model: type[Base]) -> sqlite.Insert | postgresql.Insert:
    """The dialect's ``INSERT`` construct (with ``on_conflict_do_nothing``) for ``model``'s table."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite.insert(model)
    if dialect == "postgresql":
        return postgresql.insert(model)
    raise ValueError(f"unsupported database dialect {dialect!r}: release-bot runs on SQLite or PostgreSQL")


def insert_ignore(
    session: AsyncSession, model: type[Base], values: Mapping[str, object]
) -> sqlite.Insert | postgresql.Insert:
    """An ``INSERT`` of ``values`` into ``model`` that does nothing on a key conflict."""
    return _insert(session, model).values(**values).on_conflict_do_nothing()


def insert_or_update(
    session: AsyncSession,
    model: type[Base],
    values: Mapping[str, object],
    *,
    keys: Sequence[str],
    update: Sequence[str],
) -> sqlite.Insert | postgresql.Insert:
    """An ``INSERT`` of ``values`` into ``model`` that, on a conflict of the unique ``keys``, sets
    the columns ``update`` to the new values instead (``ON CONFLICT (keys) DO UPDATE``): one
    race-free statement, the last writer wins."""
    stmt = _insert(session, model).values(**values)
    return stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in update})


async def insert_ignore_then_get(session: AsyncSession, model: type[M], values: Mapping[str, object], key: object) -> M:
    """Insert ``values`` into ``model`` unless its key exists (``ON CONFLICT DO NOTHING``), then load row ``key``.

    Pending changes are flushed first. When another transaction inserted the same key,
    PostgreSQL makes the insert wait for it to end, and the row it committed is returned.
    Raises ``LookupError`` if the row is absent afterwards (another transaction deleted it).
    """
    await session.flush()
    await session.execute(insert_ignore(session, model, values))
    row = await session.get(model, key, populate_existing=True)
    if row is None:
        raise LookupError(f"{model.__tablename__} row {key!r} vanished after its insert")
    return row


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (bound parameter lists stay under SQLite's limit)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def insert_many_ignore(session: AsyncSession, model: type[Base], rows: Sequence[Mapping[str, object]]) -> None:
    """Insert ``rows`` into ``model``'s table, skipping key conflicts (one executemany statement)."""
    await session.execute(_insert(session, model).on_conflict_do_nothing(), rows)


async def insert_many_ignore_returning_ids(
    session: AsyncSession, model: type[Base], rows: Sequence[Mapping[str, object]]
) -> set[str]:
    """As :func:`insert_many_ignore`, for a table keyed by one string column (a Spotify id):
    the keys of the rows actually inserted (``INSERT … ON CONFLICT DO NOTHING … RETURNING``)."""
    key = next(iter(model.__table__.primary_key.columns))
    stmt = _insert(session, model).on_conflict_do_nothing().returning(key)
    return set((await session.execute(stmt, rows)).scalars().all())


def escape_like(text: str) -> str:
    """``text`` with ``\\``, ``%`` and ``_`` escaped for a ``LIKE``/``ILIKE`` pattern using ``escape="\\"``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def rowcount(result: Result[Any]) -> int:
    """How many rows an ``INSERT`` / ``UPDATE`` / ``DELETE`` affected (0 for an insert ignored on a conflict).

    ``result`` is what ``AsyncSession.execute`` returned for that statement: at run time a
    ``CursorResult``, which SQLAlchemy 2.1's ``AsyncSession.execute`` types only as ``Result``.
    """
    return cast(CursorResult[Any], result).rowcount or 0
