"""Routes: a guild's release types or artists sent to another channel than its default one.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
A route is one row per (guild, kind, key): ``kind`` ``"type"`` (``key``: album, single, ep,
compilation or appears_on) or ``"artist"`` (``key``: a Spotify artist id). Setting a route is
one ``INSERT … ON CONFLICT DO UPDATE`` (the last writer wins, no duplicate); clearing it one
``DELETE`` whose row count says whether there was one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import insert_or_update, rowcount
from storage.models import Route

ROUTE_KINDS = ("type", "artist")


@dataclass(frozen=True)
class GuildRoutes:
    """A guild's routes: ``by_type`` (release type → channel id) and ``by_artist`` (Spotify artist
    id → channel id)."""

    by_type: dict[str, int] = field(default_factory=dict)
    by_artist: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_type or self.by_artist)

    def channel_ids(self) -> set[int]:
        """Every channel a route names."""
        return set(self.by_type.values()) | set(self.by_artist.values())


async def guild_routes(session: AsyncSession, guild_id: int) -> GuildRoutes:
    """The routes of guild ``guild_id`` (empty when it has none)."""
    rows = await session.execute(select(Route.kind, Route.key, Route.channel_id).where(Route.guild_id == guild_id))
    routes = GuildRoutes()
    for kind, key, channel_id in rows:
        (routes.by_type if kind == "type" else routes.by_artist)[key] = channel_id
    return routes


async def set_route(session: AsyncSession, guild_id: int, kind: str, key: str, channel_id: int) -> None:
    """Send guild ``guild_id``'s releases of ``kind``/``key`` to ``channel_id`` (replacing a route
    it had for them). Raises ``ValueError`` for an unknown ``kind``. The guild row must exist."""
    if kind not in ROUTE_KINDS:
        raise ValueError(f"unknown route kind {kind!r}")
    await session.execute(
        insert_or_update(
            session,
            Route,
            {"guild_id": guild_id, "kind": kind, "key": key, "channel_id": channel_id},
            keys=("guild_id", "kind", "key"),
            update=("channel_id",),
        )
    )


async def clear_route(session: AsyncSession, guild_id: int, kind: str, key: str) -> bool:
    """Remove guild ``guild_id``'s route for ``kind``/``key``; True when there was one."""
    result = await session.execute(
        delete(Route).where(Route.guild_id == guild_id, Route.kind == kind, Route.key == key)
    )
    return rowcount(result) > 0
