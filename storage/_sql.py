"""Dialect helpers for race-free writes: ``INSERT … ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL.

Private to ``storage``: the aggregate modules build on them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignore(session: AsyncSession, model: type, values: dict[str, Any]):
    """An ``INSERT`` of ``values`` into ``model`` that does nothing on a key conflict, or None if unsupported."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - only SQLite/PostgreSQL are used
        return None
    return insert(model).values(**values).on_conflict_do_nothing()


async def insert_ignore_then_get(session: AsyncSession, model: type, values: dict[str, Any], key: Any) -> Any:
    """Insert ``values`` into ``model`` unless its key exists (``ON CONFLICT DO NOTHING``), then load row ``key``.

    Pending changes are flushed first. When another transaction inserted the same key,
    PostgreSQL makes the insert wait for it to end, and the row it committed is returned.
    """
    await session.flush()
    stmt = insert_ignore(session, model, values)
    if stmt is None:  # pragma: no cover - only SQLite/PostgreSQL are used
        session.add(model(**values))
        await session.flush()
    else:
        await session.execute(stmt)
    row = await session.get(model, key, populate_existing=True)
    if row is None:  # pragma: no cover - the row was inserted or exists
        raise LookupError(f"{model.__tablename__} row {key!r} vanished after its insert")
    return row


def chunks(items: list[Any], size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def insert_many_ignore(
    session: AsyncSession, model: type, rows: list[dict[str, Any]], *, returning: bool = False
) -> set[Any]:
    """Insert ``rows`` into ``model``'s table, skipping key conflicts; with ``returning``, the
    primary keys (single-column) of the rows actually inserted, else an empty set."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover
        for row in rows:
            await session.merge(model(**row))
        return set()
    table = model.__table__
    stmt = insert(table).on_conflict_do_nothing()
    if not returning:
        await session.execute(stmt, rows)
        return set()
    key = list(table.primary_key.columns)[0]
    return set((await session.execute(stmt.returning(key), rows)).scalars().all())
