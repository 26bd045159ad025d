"""``release-bot migrate``: migrate the configured database to the newest schema, then exit.

For deploys that migrate once before starting the bot (``run`` and ``check`` migrate at start-up anyway).
"""

from __future__ import annotations

import sys

from bot.settings import Settings
from bot.wiring import open_store
from storage import schema


async def run_migrate(settings: Settings) -> int:
    """Open (and so migrate) the configured database, print the revision reached; 0 on success, 1 on failure."""
    try:
        db = await open_store(settings)
    except Exception as exc:  # unreachable server, bad credentials, a failing migration: one line
        print(
            f"migrate: the database could not be migrated: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr
        )
        return 1
    try:
        async with db.transaction() as session:
            revision = await schema.revision(session)
    finally:
        await db.close()
    print(f"database migrated to revision {revision} (head)")
    return 0
