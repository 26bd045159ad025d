"""``bot.services.notify``: a member's subscriptions in a guild — added by id, link or name only for a
followed artist, bounded, removed, listed, their mode, the autocompletes, the closed-DMs notice told
once — and what two clicks (or a click and an unfollow) at the same instant in two bot processes do.

On the run's backend (SQLite, then PostgreSQL under ``scripts/test.sh``), with the injected clock.
The two-process tests force the interleaving with the write barrier of ``test_follows_race.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from bot.services.errors import UserError
from bot.services.guild_settings import GuildSettingsService
from bot.services.notify import (
    MemberSubscriptions,
    NotifyService,
    Subscribed,
    dm_closed_text,
    mode_text,
    subscribed_text,
)
from bot.spotify.models import Artist as SpotifyArtist
from storage import catalog, guilds, members
from storage.db import Database, open_database
from storage.models import Guild, Member, Subscription
from tests.bot.services.helpers import SCHEDULE
from tests.bot.services.test_follows_race import WriteBarrier, count, ok

pytestmark = pytest.mark.timeout(60)

GUILD, OTHER_GUILD = 1001, 2002
ANN, BEN = 501, 502
NOVA, GUEST, HARBOUR, UNKNOWN = "1" * 22, "2" * 22, "3" * 22, "9" * 22


class NoSpotify:
    """Notify never asks Spotify: a lookup fails the test."""

    async def get_artist(self, artist_id: str) -> SpotifyArtist:
        raise AssertionError(f"/notify asked Spotify for {artist_id}")


def service(db: Database, clock, *, max_subscriptions: int = 100) -> NotifyService:
    return NotifyService(
        db,
        GuildSettingsService(db, clock=clock, default_schedule=SCHEDULE, spotify=NoSpotify()),
        clock=clock,
        max_subscriptions=max_subscriptions,
    )


async def follow(db: Database, clock, guild_id: int, *artists: tuple[str, str]) -> None:
    await service(db, clock).guild_settings.ensure_guild(guild_id)
    async with db.transaction() as s:
        for artist_id, name in artists:
            await catalog.get_or_create_artist(s, artist_id, name)
            await guilds.follow_artist(s, guild_id, artist_id, now=clock())


@pytest.fixture
async def notify(db, clock) -> NotifyService:
    await follow(db, clock, GUILD, (NOVA, "Nova Lights"), (GUEST, "Guest_Star"), (HARBOUR, "The Quiet Harbour"))
    await follow(db, clock, OTHER_GUILD, (NOVA, "Nova Lights"))
    async with db.transaction() as s:  # known to the bot, followed by no guild
        await catalog.get_or_create_artist(s, UNKNOWN, "Stranger")
    return service(db, clock, max_subscriptions=2)


async def test_subscribe_by_id_link_or_name_then_already(notify: NotifyService, db, clock):
    assert await notify.subscribe(GUILD, ANN, NOVA) == Subscribed(NOVA, "Nova Lights", False, "mention")
    assert await notify.subscribe(GUILD, ANN, "  nova LIGHTS ") == Subscribed(NOVA, "Nova Lights", True, "mention")
    link = f"https://open.spotify.com/artist/{GUEST}?si=abc"
    assert await notify.subscribe(GUILD, ANN, link) == Subscribed(GUEST, "Guest_Star", False, "mention")
    async with db.transaction() as s:
        row = await s.get(Subscription, (GUILD, ANN, NOVA))
        assert row is not None and row.created_at == clock()
    assert (await notify.subscriptions(GUILD, ANN)).artists == [(GUEST, "Guest_Star"), (NOVA, "Nova Lights")]


async def test_only_an_artist_the_server_follows_and_never_past_the_limit(notify: NotifyService):
    with pytest.raises(UserError, match="doesn't follow “Stranger”") as info:  # a known id is named
        await notify.subscribe(GUILD, ANN, UNKNOWN)
    assert "`/following`" in str(info.value) and "nothing was changed" in str(info.value)
    with pytest.raises(UserError, match="doesn't follow “Nobody”"):
        await notify.subscribe(GUILD, ANN, "Nobody")
    with pytest.raises(UserError, match="doesn't follow"):  # the other server follows only Nova
        await notify.subscribe(OTHER_GUILD, ANN, GUEST)
    with pytest.raises(UserError, match="Name an artist"):
        await notify.subscribe(GUILD, ANN, "  ")
    await notify.subscribe(GUILD, ANN, NOVA)
    await notify.subscribe(GUILD, ANN, GUEST)
    with pytest.raises(UserError) as info:
        await notify.subscribe(GUILD, ANN, HARBOUR)
    assert str(info.value) == (
        "You're already notified of 2 artists in this server, the most allowed. "
        "Remove some with `/notify remove` first; nothing was changed."
    )
    assert (await notify.subscribe(GUILD, ANN, NOVA)).already  # an existing one is still "already", not refused
    assert (await notify.subscribe(OTHER_GUILD, ANN, NOVA)).already is False  # the limit is per server
    assert (await notify.subscribe(GUILD, BEN, HARBOUR)).already is False  # and per member


async def test_a_refusal_writes_nothing(notify: NotifyService, db):
    with pytest.raises(UserError):
        await notify.subscribe(GUILD, ANN, UNKNOWN)
    assert await count(db, Member) == 0 and await count(db, Subscription) == 0


async def test_remove_by_id_or_name_and_only_ones_own(notify: NotifyService):
    await notify.subscribe(GUILD, ANN, NOVA)
    await notify.subscribe(GUILD, ANN, GUEST)
    await notify.subscribe(GUILD, BEN, NOVA)
    await notify.subscribe(OTHER_GUILD, ANN, NOVA)
    assert await notify.unsubscribe(GUILD, ANN, NOVA) == "Nova Lights"
    assert await notify.unsubscribe(GUILD, ANN, "guest_star") == "Guest_Star"
    with pytest.raises(UserError, match=r"not notified of “Nova Lights” in this server.*`/notify list`"):
        await notify.unsubscribe(GUILD, ANN, "Nova Lights")
    assert (await notify.subscriptions(GUILD, ANN)).artists == []
    assert (await notify.subscriptions(GUILD, BEN)).artists == [(NOVA, "Nova Lights")]  # another member's stay
    assert (await notify.subscriptions(OTHER_GUILD, ANN)).artists == [(NOVA, "Nova Lights")]  # another server's too


async def test_autocompletes(notify: NotifyService):
    assert await notify.add_choices(GUILD, "") == [
        ("Guest_Star", GUEST),
        ("Nova Lights", NOVA),
        ("The Quiet Harbour", HARBOUR),
    ]
    assert await notify.add_choices(GUILD, " har ") == [("The Quiet Harbour", HARBOUR)]
    assert await notify.add_choices(OTHER_GUILD, "") == [("Nova Lights", NOVA)]
    await notify.subscribe(GUILD, ANN, HARBOUR)
    await notify.subscribe(GUILD, BEN, NOVA)
    assert await notify.remove_choices(GUILD, ANN, "") == [("The Quiet Harbour", HARBOUR)]
    assert await notify.remove_choices(GUILD, ANN, "nova") == []
    assert await notify.remove_choices(OTHER_GUILD, ANN, "") == []


async def test_mode_per_server(notify: NotifyService, db, clock):
    assert (await notify.subscriptions(GUILD, ANN)).mode == "mention"
    subs = await notify.set_mode(GUILD, ANN, " DM ")
    assert subs == MemberSubscriptions([], "dm", None)
    assert (await notify.subscribe(GUILD, ANN, NOVA)).mode == "dm"
    assert (await notify.subscriptions(OTHER_GUILD, ANN)).mode == "mention"
    with pytest.raises(UserError, match="Choose a mode: mention or dm"):
        await notify.set_mode(GUILD, ANN, "pigeon")
    async with db.transaction() as s:
        assert await members.subscribers(s, GUILD, [NOVA]) == {NOVA: [members.Subscriber(ANN, "dm")]}
    # a mode chosen in a server the bot has no row for yet creates it
    assert (await notify.set_mode(3003, ANN, "dm")).mode == "dm"
    assert await count(db, Guild, Guild.id == 3003) == 1


async def test_closed_dms_are_told_once_per_server_and_switching_back_warns(notify: NotifyService, db, clock):
    await notify.set_mode(GUILD, ANN, "dm")
    await notify.set_mode(OTHER_GUILD, ANN, "dm")
    assert await notify.take_dm_notice(GUILD, ANN) is False
    async with db.transaction() as s:
        await members.mark_dms_closed(s, ANN, now=clock())
    subs = await notify.subscriptions(GUILD, ANN)
    assert subs.mode == "mention" and subs.dm_closed_at == clock()
    assert await notify.take_dm_notice(GUILD, ANN) is True
    assert await notify.take_dm_notice(GUILD, ANN) is False
    assert await notify.take_dm_notice(GUILD, BEN) is False
    await notify.restore_dm_notice(GUILD, ANN)  # the notice could not be sent
    assert await notify.take_dm_notice(GUILD, ANN) is True
    subs = await notify.set_mode(OTHER_GUILD, ANN, "dm")  # choosing drops the notice owed there
    assert await notify.take_dm_notice(OTHER_GUILD, ANN) is False
    text = mode_text(subs.mode, subs.dm_closed_at)
    assert "direct message" in text and f"<t:{int(clock().timestamp())}:D>" in text and "open them first" in text
    assert "`/notify mode mode:dm`" in dm_closed_text() and "mentioned" in dm_closed_text()


def test_answers_say_what_happens_and_how_to_change_it():
    new = subscribed_text(Subscribed(NOVA, "Nova_Lights", False, "mention"))
    assert new == (
        r"🔔 You'll be mentioned in this server's post when **Nova\_Lights** releases something here — "
        "`/notify mode` switches to a direct message; `/notify remove` (or the 🔔 button again) stops it."
    )
    dm = subscribed_text(Subscribed(NOVA, "Nova", False, "dm"))
    assert "You'll be sent a direct message when **Nova**" in dm and "switches to a mention" in dm
    already = subscribed_text(Subscribed(NOVA, "Nova", True, "dm"))
    assert already.startswith("You're already notified of **Nova** here") and "`/notify remove`" in already


# --- two bot processes, the same instant ----------------------------------------------------------


@contextlib.asynccontextmanager
async def two_processes(db: Database, clock, **kwargs) -> AsyncIterator[tuple[NotifyService, NotifyService]]:
    """The service in two processes on ``db``'s database (two engines)."""
    second = await open_database(db.engine.url.render_as_string(hide_password=False), migrate=False)
    try:
        yield service(db, clock, **kwargs), service(second, clock, **kwargs)
    finally:
        await second.close()


async def test_two_clicks_at_the_same_instant_give_one_subscription_and_no_error(notify, db, clock):
    async with two_processes(db, clock) as (one, two):
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(one.subscribe(GUILD, ANN, NOVA), two.subscribe(GUILD, ANN, NOVA))
        assert sorted(ok(r).already for r in results) == [False, True]
        assert await count(db, Subscription) == 1 and await count(db, Member) == 1


async def test_two_clicks_one_below_the_limit_end_at_the_limit(notify, db, clock):
    async with two_processes(db, clock, max_subscriptions=2) as (one, two):
        await one.subscribe(GUILD, ANN, HARBOUR)
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(one.subscribe(GUILD, ANN, NOVA), two.subscribe(GUILD, ANN, GUEST))
        refused = [r for r in results if isinstance(r, BaseException)]
        added = [ok(r) for r in results if not isinstance(r, BaseException)]
        assert len(added) == 1 and not added[0].already
        assert len(refused) == 1 and isinstance(refused[0], UserError) and "the most allowed" in str(refused[0])
        assert await count(db, Subscription, Subscription.user_id == ANN) == 2


async def test_a_click_and_an_unfollow_at_the_same_instant_leave_no_subscription(notify, db, clock):
    async with two_processes(db, clock) as (one, two):

        async def unfollow() -> bool:
            async with two.db.transaction() as s:
                return await guilds.unfollow(s, GUILD, NOVA)

        barrier = WriteBarrier(one.db, two.db)
        subscribed, unfollowed = await barrier.run(one.subscribe(GUILD, ANN, NOVA), unfollow())
        assert ok(unfollowed) is True
        # Either the click came first (and the unfollow removed its subscription) or it was refused.
        assert isinstance(subscribed, Subscribed) or (
            isinstance(subscribed, UserError) and "doesn't follow" in str(subscribed)
        )
        assert await count(db, Subscription) == 0


async def test_the_closed_dms_notice_is_told_once_when_two_commands_finish_at_once(notify, db, clock):
    async with two_processes(db, clock) as (one, two):
        await one.set_mode(GUILD, ANN, "dm")
        async with db.transaction() as s:
            await members.mark_dms_closed(s, ANN, now=clock())
        barrier = WriteBarrier(one.db, two.db)
        results = await barrier.run(one.take_dm_notice(GUILD, ANN), two.take_dm_notice(GUILD, ANN))
        assert sorted(ok(r) for r in results) == [False, True]
