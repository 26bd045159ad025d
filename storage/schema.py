"""The version of the store's schema: the Alembic revision the database is migrated to."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def revision(session: AsyncSession) -> str:
    """The Alembic revision the database is at (``alembic_version.version_num``; head after ``open_database``).

    Raises ``sqlalchemy.exc.NoResultFound`` on a database that was never migrated.
    """
    return str((await session.execute(text("SELECT version_num FROM alembic_version"))).scalar_one())
