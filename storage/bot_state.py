"""Small key/value facts the bot keeps between starts (the ``bot_state`` table), such as the hash of
the slash commands last synced with Discord.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
(The channel-problem notice marks live in the same table; their functions are in :mod:`storage.guilds`.)
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import insert_ignore, rowcount
from storage.models import BotState


def commands_hash_key(application_id: int | None) -> str:
    """``bot_state`` key of the command hash of Discord application ``application_id``."""
    return f"commands_hash:{application_id}"


async def read(session: AsyncSession, key: str) -> str | None:
    """The value stored under ``key`` (≤ 64 characters), or None when there is none."""
    return await session.scalar(select(BotState.value).where(BotState.key == key))


async def write(session: AsyncSession, key: str, value: str) -> None:
    """Store ``value`` under ``key``, replacing what was there. Not committed.

    Race-free: ``INSERT … ON CONFLICT DO NOTHING``, then an ``UPDATE`` when the key existed, so two
    processes writing the same key at once both succeed (the later transaction's value stays).
    """
    inserted = await session.execute(insert_ignore(session, BotState, {"key": key, "value": value}))
    if not rowcount(inserted):
        await session.execute(update(BotState).where(BotState.key == key).values(value=value))
