"""Per-server album groups: each guild is posted only the groups it chose; the rest is skipped for good."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.delivery import Deliverer, pending_releases, split_pending
from storage.models import Guild
from tests.bot.delivery.helpers import album, found, set_groups
from tests.bot.helpers import FakeSender, add_guild, follow, ledger

T0 = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


async def test_two_guilds_with_different_choices(db, clock):
    for gid in (1, 2):
        await add_guild(db, gid, now=clock())
        await follow(db, gid, "A", now=clock())
        await follow(db, gid, "B", now=clock())
    await set_groups(db, 2, ["album", "appears_on"])
    clock.advance(hours=1)
    await found(db, "A", album("alb", "LP"), "album", clock())
    await found(db, "A", album("sgl", "Single", "single"), "single", clock())
    await found(db, "A", album("cmp", "Hits", "compilation"), "compilation", clock())
    await found(db, "A", album("app", "Guest Spot"), "appears_on", clock())
    # A release on both artists' pages: a single for B, an appearance for A → wanted by guild 2 via A.
    await found(db, "B", album("duo", "Duet", "single"), "single", clock())
    await found(db, "A", album("duo", "Duet", "single"), "appears_on", clock())

    async with db.sessions() as s:
        wanted1, unwanted1 = await split_pending(s, 1)
        wanted2, unwanted2 = await split_pending(s, 2)
    assert {r.id for r in wanted1} == {"alb", "sgl", "cmp", "duo"} and {r.id for r in unwanted1} == {"app"}
    assert {r.id for r in wanted2} == {"alb", "app", "duo"} and {r.id for r in unwanted2} == {"sgl", "cmp"}

    one, two = FakeSender(), FakeSender()
    r1 = await Deliverer(db, one, clock=clock).deliver(1, run_id=7)
    r2 = await Deliverer(db, two, clock=clock).deliver(2, run_id=7)
    assert sorted(one.titles()) == ["Duet", "Hits", "LP", "Single"] and (r1.posted, r1.skipped) == (4, 1)
    assert sorted(two.titles()) == ["Duet", "Guest Spot", "LP"] and (r2.posted, r2.skipped) == (3, 2)
    rows = {r.release_id: r.status for r in await ledger(db, 2)}
    assert rows == {"alb": "sent", "app": "sent", "duo": "sent", "sgl": "skipped", "cmp": "skipped"}

    # Turning singles on later posts only what is found from then on, never the skipped past.
    await set_groups(db, 2, ["album", "single", "appears_on"])
    clock.advance(hours=1)
    await found(db, "A", album("sg2", "Next Single", "single"), "single", clock())
    again = await Deliverer(db, two, clock=clock).deliver(2)
    assert again.posted == 1 and two.titles()[-1] == "Next Single"
    assert "Single" not in two.titles()


async def test_skipped_releases_are_recorded_even_without_a_channel(db, clock):
    await add_guild(db, 1, now=clock(), channel_id=None)
    await follow(db, 1, "A", now=clock())
    await set_groups(db, 1, ["single"])
    clock.advance(hours=1)
    await found(db, "A", album("alb", "LP"), "album", clock())
    await found(db, "A", album("sgl", "Song", "single"), "single", clock())
    result = await Deliverer(db, FakeSender(), clock=clock).deliver(1)
    assert (result.posted, result.skipped, result.pending, result.problem) == (0, 1, 1, "no channel set")
    async with db.sessions() as s:
        assert [r.id for r in await pending_releases(s, 1)] == ["sgl"]


async def test_unset_groups_mean_the_default(db, clock):
    await add_guild(db, 1, now=clock())
    await follow(db, 1, "A", now=clock())
    await set_groups(db, 1, None)
    clock.advance(hours=1)
    await found(db, "A", album("app", "Guest"), "appears_on", clock())
    await found(db, "A", album("alb", "LP"), "album", clock())
    async with db.sessions() as s:
        assert [r.id for r in await pending_releases(s, 1)] == ["alb"]
        assert (await s.scalar(select(Guild.album_groups).where(Guild.id == 1))) is None
