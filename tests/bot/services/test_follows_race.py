"""Two bot processes on one database, commands at the same instant: nothing fails, nothing is lost.

Each "process" is a :class:`~tests.bot.services.helpers.World` with its own ``Database`` engine
on the same database (as two ``release-bot run`` processes have), sharing one Spotify emulator.
The interleaving is forced, not hoped for: :class:`WriteBarrier` holds each engine's first
write statement until the other engine has reached its own first write — both transactions
are then past whatever they read before writing — and lets both go. A get-then-insert or
read-count-then-write command fails these tests (``UniqueViolation … artists_pkey``, a lost
update, a limit exceeded); storage's race-free statements pass them. Runs on SQLite and on
PostgreSQL (``scripts/test.sh``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.util import await_only

from bot.services.errors import NotFollowed, UserError
from bot.services.follows import FollowOutcome, limit_text
from bot.services.imports import ImportResult
from fakes.spotify_emulator import SpotifyEmulator
from storage.db import Database, open_database
from storage.models import Artist, ArtistRelease, Follow, Guild
from tests.bot.services.helpers import World, services_world

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")
GUILD_A, GUILD_B = 1001, 2002  # e.g. on different shards, served by different processes
WRITES = ("INSERT", "UPDATE", "DELETE")


class WriteBarrier:
    """While armed, holds the first ``INSERT``/``UPDATE``/``DELETE`` of each engine until every engine
    has reached its first write, then releases them all (bounded: 10 s, then the test fails).

    Writes to the ``leases`` table (``/import``'s per-server guard, taken before its follows) do not
    count: the barrier is for the commands' own transactions.
    """

    def __init__(self, *dbs: Database) -> None:
        self.parties = len(dbs)
        self.arrived: set[int] = set()
        self.released = asyncio.Event()
        self.armed = False
        for db in dbs:
            event.listen(db.engine.sync_engine, "before_cursor_execute", self._hook(id(db)))

    def _hook(self, key: int):
        def before_cursor_execute(conn, cursor, statement, parameters, context, executemany) -> None:
            verb = statement.lstrip().split(" ", 1)[0].upper()
            if not self.armed or key in self.arrived or verb not in WRITES or " leases " in f"{statement} ":
                return
            self.arrived.add(key)
            if len(self.arrived) == self.parties:
                self.released.set()
            # Runs inside SQLAlchemy's greenlet: wait on the event loop for the other engine.
            await_only(asyncio.wait_for(self.released.wait(), 10))

        return before_cursor_execute

    async def run(self, *work: Awaitable[T]) -> list[T | BaseException]:
        """Run ``work`` concurrently with the barrier armed; results (or exceptions) in order."""
        self.armed = True
        try:
            return await asyncio.gather(*work, return_exceptions=True)
        finally:
            self.armed = False
            assert len(self.arrived) == self.parties, "a command never wrote: the interleaving was not forced"


@contextlib.asynccontextmanager
async def two_processes(db: Database, clock, *, max_follows: int = 500) -> AsyncIterator[tuple[World, World]]:
    """Two bot processes on ``db``'s database (two engines), one Spotify emulator."""
    second = await open_database(db.engine.url.render_as_string(hide_password=False), migrate=False)
    try:
        async with (
            SpotifyEmulator() as emu,
            services_world(db, clock, emu=emu, max_follows=max_follows) as one,
            services_world(second, clock, emu=emu, max_follows=max_follows) as two,
        ):
            yield one, two
    finally:
        await second.close()


def ok(result: T | BaseException) -> T:
    """``result`` of a command, re-raising what it raised (the test then shows the real error)."""
    if isinstance(result, BaseException):
        raise result
    return result


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_two_guilds_follow_the_same_new_artist_at_the_same_instant(db, clock):
    async with two_processes(db, clock) as (one, two):
        artist = one.emu.add_artist("Nova Lights")
        one.emu.add_album([artist], "Old Single", album_type="single")
        await one.services.guild_settings.ensure_guild(GUILD_A)
        await two.services.guild_settings.ensure_guild(GUILD_B)
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(
            one.services.follows.follow(GUILD_A, artist), two.services.follows.follow(GUILD_B, artist)
        )
        first, second = ok(results[0]), ok(results[1])
        for outcome in (first, second):  # both "Now following", neither "already" nor an error
            assert outcome.artist_id == artist and outcome.artist_name == "Nova Lights"
            assert not outcome.already_following
        # Both baselines ran; whichever stored the old single first reports it (the other may find it done).
        assert 1 in (first.baseline_releases, second.baseline_releases)
        assert {first.baseline_releases, second.baseline_releases} <= {0, 1}
        assert await count(db, ArtistRelease, ArtistRelease.baseline.is_(True)) == 1
        assert await count(db, ArtistRelease, ArtistRelease.baseline.is_(False)) == 0  # never announced
        assert await count(db, Artist) == 1
        assert await count(db, Follow, Follow.artist_id == artist) == 2
        assert [r.artist_id for r in await one.services.follows.following(GUILD_B)] == [artist]
        assert [r.artist_id for r in await two.services.follows.following(GUILD_A)] == [artist]


async def test_the_same_guild_follows_the_same_new_artist_twice_at_the_same_instant(db, clock):
    async with two_processes(db, clock) as (one, two):
        artist = one.emu.add_artist("Nova Lights")
        await one.services.guild_settings.ensure_guild(GUILD_A)
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(
            one.services.follows.follow(GUILD_A, artist), two.services.follows.follow(GUILD_A, artist)
        )
        outcomes = sorted((ok(r) for r in results), key=lambda o: o.already_following)
        assert [o.already_following for o in outcomes] == [False, True]  # one follow, one "already follows"
        assert all(o.artist_id == artist and o.artist_name == "Nova Lights" for o in outcomes)
        assert await count(db, Artist) == 1
        assert await count(db, Follow, Follow.guild_id == GUILD_A) == 1


async def test_a_guild_one_below_its_limit_following_two_artists_at_once_ends_at_the_limit(db, clock):
    async with two_processes(db, clock, max_follows=3) as (one, two):
        first, second, *known = (one.emu.add_artist(f"Artist {i}") for i in range(4))
        for artist in known:
            await one.services.follows.follow(GUILD_A, artist)
        await two.services.follows.follow(GUILD_B, first)  # another guild's follows do not count
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(
            one.services.follows.follow(GUILD_A, first), two.services.follows.follow(GUILD_A, second)
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        followed = [r for r in results if isinstance(r, FollowOutcome)]
        assert len(followed) == 1 and not followed[0].already_following
        assert len(refused) == 1 and isinstance(refused[0], UserError)
        assert (
            str(refused[0])
            == limit_text(3)
            == ("This server already follows 3 artists, the most allowed. Unfollow some first.")
        )
        assert await count(db, Follow, Follow.guild_id == GUILD_A) == 3
        assert await count(db, Follow, Follow.guild_id == GUILD_B) == 1


async def test_an_import_and_a_follow_at_the_same_instant_respect_the_limit(db, clock):
    async with two_processes(db, clock, max_follows=3) as (one, two):
        artists = [one.emu.add_artist(f"Artist {i}") for i in range(4)]
        playlist = one.emu.add_playlist("Mix", [one.emu.add_album([a], f"Song {a[:4]}") for a in artists[:3]])
        preview = await one.services.imports.preview_playlist(GUILD_A, playlist)
        assert len(preview.to_follow) == 3
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(
            one.services.imports.confirm(preview), two.services.follows.follow(GUILD_A, artists[3])
        )
        imported = ok(results[0])
        assert isinstance(imported, ImportResult)
        assert await count(db, Follow, Follow.guild_id == GUILD_A) == 3
        if isinstance(results[1], BaseException):  # the import locked the guild first
            assert str(results[1]) == limit_text(3) and len(imported.followed) == 3
        else:  # the follow did: the import stops at the limit
            assert len(imported.followed) == 2 and imported.over_limit == 1


async def test_unfollowing_twice_at_the_same_instant_unfollows_once(db, clock):
    async with two_processes(db, clock) as (one, two):
        artist = one.emu.add_artist("Nova Lights")
        await one.services.follows.follow(GUILD_A, artist)
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(
            one.services.follows.unfollow(GUILD_A, artist), two.services.follows.unfollow(GUILD_A, "nova lights")
        )
        assert sorted(type(r).__name__ for r in results) == ["NotFollowed", "str"]
        assert "Nova Lights" in results and any(isinstance(r, NotFollowed) for r in results)
        assert await count(db, Follow) == 0


async def test_two_admins_changing_filters_at_the_same_instant_keep_both_changes(db, clock):
    async with two_processes(db, clock) as (one, two):
        artist = one.emu.add_artist("Guest Star")
        await one.services.follows.follow(GUILD_A, artist)
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(
            one.services.guild_settings.set_filters(GUILD_A, skip={"remix": True}),
            two.services.guild_settings.set_filters(GUILD_A, mute=artist),
        )
        for r in results:
            ok(r)
        stored = await one.services.guild_settings.filters(GUILD_A)
        assert stored.skip == {"remix"} and stored.mute_appearances == {artist}


async def test_two_hide_buttons_pressed_at_the_same_instant_both_take_effect(db, clock):
    async with two_processes(db, clock) as (one, two):
        await one.services.guild_settings.ensure_guild(GUILD_A)
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(
            one.services.guild_settings.switch_album_groups(GUILD_A, {"single": False}),
            two.services.guild_settings.switch_album_groups(GUILD_A, {"compilation": False, "appears_on": True}),
        )
        for r in results:
            ok(r)
        assert await one.services.guild_settings.album_groups(GUILD_A) == ("album", "ep", "appears_on")


async def test_settings_of_a_guild_created_by_two_processes_at_once_are_all_kept(db, clock):
    async with two_processes(db, clock) as (one, two):
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(
            one.services.guild_settings.set_channel(GUILD_A, 555),
            two.services.guild_settings.set_schedule(GUILD_A, "monday", "08:30", "Europe/Berlin"),
        )
        for r in results:
            ok(r)
        assert await count(db, Guild) == 1
        guild = await one.services.guild_settings.ensure_guild(GUILD_A)
        assert guild.channel_id == 555
        assert (guild.schedule_day, guild.schedule_time, guild.timezone) == (0, "08:30", "Europe/Berlin")


async def test_the_channel_notice_is_told_once_when_two_commands_finish_at_once(db, clock):
    async with two_processes(db, clock) as (one, two):
        await one.services.guild_settings.set_channel(GUILD_A, 555)
        async with db.transaction() as s:
            await s.execute(update(Guild).where(Guild.id == GUILD_A).values(channel_problem="Missing Permissions"))
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(
            one.services.guild_settings.take_channel_notice(GUILD_A),
            two.services.guild_settings.take_channel_notice(GUILD_A),
        )
        assert sorted(map(repr, results)) == sorted([repr(None), repr((555, "Missing Permissions"))])
        assert await one.services.guild_settings.take_channel_notice(GUILD_A) is None
