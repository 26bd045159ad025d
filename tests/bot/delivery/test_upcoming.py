"""``bot.delivery.upcoming``: announced releases posted once per (guild, release group), where a post of that
type by that artist would go, with the guild's types and filters; edited once for a new date or a
disappearance; settled after a lost answer or a crash; and the release's own post replying to the
announcement (``bot.delivery.deliverer``) — with the in-memory Discord, on the run's backend."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.delivery.deliverer import Deliverer
from bot.delivery.planner import GuildFilters
from bot.delivery.upcoming import (
    Announcer,
    group_release_type,
    notice_content,
    skip_reason,
    spoken_date,
)
from storage import guilds, musicdata, routes, upcoming
from storage.db import Database
from storage.models import Guild
from storage.musicdata import ReleaseGroupRow
from storage.upcoming import AnnouncedGroup
from tests.bot.delivery.fake_discord import FakeDiscord
from tests.bot.delivery.world import DEFAULT, GUILD, guild_following, release
from tests.conftest import FakeClock

MB = "10000000-0000-4000-8000-0000000000"


def mbid(n: int) -> str:
    return f"{MB}{n:02d}"


def row(
    n: int,
    clock: FakeClock,
    *,
    days: int = 20,
    artists: tuple[str, ...] = ("A",),
    title: str | None = None,
    primary: str | None = "Album",
    secondary: tuple[str, ...] = (),
    caa: bool = True,
) -> ReleaseGroupRow:
    return ReleaseGroupRow(
        mbid=mbid(n),
        title=title or f"Record {n}",
        artist_credit_name=" & ".join(f"Artist {a}" for a in artists),
        artist_mbids=(mbid(90),),
        primary_type=primary,
        secondary_types=secondary,
        release_date=clock().date() + dt.timedelta(days=days),
        release_mbid=mbid(50 + n),
        caa_id=4242 if caa else None,
        caa_release_mbid=mbid(70 + n) if caa else None,
        spotify_ids=artists,
    )


async def listed(db: Database, clock: FakeClock, rows: list[ReleaseGroupRow]) -> None:
    """One daily fetch listing ``rows`` (a stored group dated inside its window that it lacks is gone)."""
    today = clock().date()
    async with db.transaction() as session:
        await musicdata.store_release_groups(
            session,
            rows,
            listed={r.mbid for r in rows},
            window=(today - dt.timedelta(days=30), today + dt.timedelta(days=30)),
            now=clock(),
        )


async def turn_on(db: Database, guild_id: int = GUILD) -> None:
    async with db.transaction() as session:
        await upcoming.set_upcoming(session, guild_id, True)


@pytest.fixture
def discord() -> FakeDiscord:
    return FakeDiscord()


@pytest.fixture
def announcer(db, discord, clock) -> Announcer:
    return Announcer(db, discord, clock=clock)


async def posted_rows(db: Database, guild_id: int = GUILD):
    async with db.transaction() as session:
        return await upcoming.posted_announcements(session, guild_id)


# --- pure rules ------------------------------------------------------------------------------------


def test_types_and_words():
    assert group_release_type("Album", ()) == "album"
    assert group_release_type("EP", ()) == "ep"
    assert group_release_type("Album", ("Compilation",)) == "compilation"
    assert group_release_type("Other", ()) is None and group_release_type(None, ()) is None
    today = dt.date(2026, 11, 20)
    assert spoken_date(dt.date(2026, 12, 11), today) == "Friday 11 December"
    assert spoken_date(dt.date(2027, 1, 8), today) == "Friday 8 January 2027"


def _group(**over) -> AnnouncedGroup:
    values = dict(
        mbid=mbid(1),
        title="Night Drive",
        artist_credit_name="Nova",
        primary_type="Single",
        secondary_types=(),
        release_date=dt.date(2026, 12, 11),
        first_seen_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
        date_changes=(),
        gone=False,
        spotify_release_id=None,
        caa_id=None,
        caa_release_mbid=None,
        spotify_ids=("A",),
    )
    values.update(over)
    return AnnouncedGroup(**values)  # type: ignore[arg-type]


def test_types_filters_and_blocks_apply_as_to_posts():
    types = ("album", "single")
    assert skip_reason(_group(), types, GuildFilters()) is None
    assert skip_reason(_group(primary_type="EP"), types, GuildFilters()) == "type"
    remixes = GuildFilters(skip=frozenset({"remix"}))
    assert skip_reason(_group(title="Night Drive (Remixes)"), types, remixes) == "remix"
    assert skip_reason(_group(secondary_types=("Remix",)), types, remixes) == "remix"
    assert skip_reason(_group(), types, GuildFilters(block_keywords=("drive",))) == "block_title"
    blocked = GuildFilters.from_json({"block_artists": [{"id": "A", "name": "Nova"}]})
    assert skip_reason(_group(), types, blocked) == "block_artist"


def test_the_content_says_title_artist_and_date_in_words():
    group = _group(title="A*B")
    today = dt.date(2026, 11, 20)
    assert notice_content(group, "announced", group.release_date, today) == (
        "Announced: *A\\*B* — Nova · out Friday 11 December"
    )
    assert notice_content(group, "postponed", dt.date(2026, 12, 18), today).endswith("postponed to Friday 18 December")
    assert "no longer listed" in notice_content(group, "gone", group.release_date, today)


# --- posting ---------------------------------------------------------------------------------------


async def test_an_announced_release_is_posted_once_with_its_cover(db, clock, discord, announcer):
    await guild_following(db, clock, ["A"])
    await guild_following(db, clock, ["B"], guild_id=2, channel_id=200)
    await guild_following(db, clock, ["A"], guild_id=3, channel_id=300)  # follows A, upcoming off
    await turn_on(db)
    await turn_on(db, 2)
    await listed(db, clock, [row(1, clock), row(2, clock, days=0)])  # 2: first seen on its day
    [first, *_] = await announcer.run()
    assert first.posted == 1
    [message] = discord.posts(DEFAULT)
    day = spoken_date(clock().date() + dt.timedelta(days=20), clock().date())
    assert message.content == f"Announced: *Record 1* — Artist A · out {day}"
    [embed] = message.embeds
    assert embed["url"] == f"https://musicbrainz.org/release-group/{mbid(1)}"
    assert embed["thumbnail"]["url"] == f"https://coverartarchive.org/release/{mbid(71)}/4242-250.jpg"
    assert discord.posts(200) == [] and discord.posts(300) == []  # another guild never sees it
    await announcer.run()
    assert len(discord.posts(DEFAULT)) == 1  # once
    [(post, _group)] = await posted_rows(db)
    assert post.message_id == message.id and post.shown_state == "announced"


async def test_types_filters_and_routes_decide_where_and_whether(db, clock, discord, announcer):
    await guild_following(db, clock, ["A", "B"])
    await turn_on(db)
    async with db.transaction() as session:
        await guilds.set_album_groups(session, GUILD, ["album", "single"])
        await routes.set_route(session, GUILD, "artist", "B", 555)
    await listed(
        db,
        clock,
        [row(1, clock, primary="EP"), row(2, clock, artists=("B",)), row(3, clock, primary="Other")],
    )
    [result] = await announcer.run()
    assert (result.posted, result.skipped) == (1, 2)
    assert discord.posts(DEFAULT) == [] and len(discord.posts(555)) == 1
    async with db.transaction() as session:  # turning EPs on later never posts the past
        await guilds.set_album_groups(session, GUILD, ["album", "single", "ep"])
    await announcer.run()
    assert discord.posts(DEFAULT) == []


async def test_a_forum_gets_a_post_of_its_own(db, clock, discord, announcer):
    await guild_following(db, clock, ["A"], channel_id=400)
    discord.add_channel(400, "forum", tags=["Album"])
    await turn_on(db)
    await listed(db, clock, [row(1, clock)])
    await announcer.run()
    [thread] = discord.forum_posts(400)
    assert thread.name == "Artist A — Record 1" and thread.tag_ids == [discord.channels[400].tags["Album"]]
    [(post, _g)] = await posted_rows(db)
    assert post.thread_id == thread.id == post.message_id


async def test_nothing_without_a_channel_and_nothing_when_off(db, clock, discord, announcer):
    await guild_following(db, clock, ["A"], channel_id=None)
    await turn_on(db)
    await listed(db, clock, [row(1, clock)])
    await announcer.run()
    async with db.transaction() as session:
        assert [g.mbid for g in await upcoming.unannounced_groups(session, GUILD, since=clock().date())] == [mbid(1)]
        await upcoming.set_upcoming(session, GUILD, False)
        await guilds.set_channel(session, GUILD, DEFAULT)
    await announcer.run()
    assert discord.posts(DEFAULT) == []


# --- edits -----------------------------------------------------------------------------------------


async def test_a_new_date_edits_the_message_once_and_a_disappearance_again(db, clock, discord, announcer):
    await guild_following(db, clock, ["A"])
    await turn_on(db)
    await listed(db, clock, [row(1, clock)])
    await announcer.run()
    clock.advance(days=1)
    await listed(db, clock, [row(1, clock, days=26)])  # a week later than announced
    [result] = await announcer.run()
    await announcer.run()
    [message] = discord.posts(DEFAULT)
    new_day = spoken_date(clock().date() + dt.timedelta(days=26), clock().date())
    assert result.edited == 1 and message.edits == 1
    assert (
        message.content.endswith(f"postponed to {new_day}")
        and f"postponed to {new_day}" in message.embeds[0]["description"]
    )
    clock.advance(days=1)
    await listed(db, clock, [])  # the listing covers its date and lacks it
    await announcer.run()
    await announcer.run()
    assert message.edits == 2 and "no longer listed on MusicBrainz" in message.content
    assert len(discord.posts(DEFAULT)) == 1  # never a new post
    [(post, _g)] = await posted_rows(db)
    assert post.shown_state == "gone"


async def test_two_announcers_make_an_edit_once(db, clock, discord):
    await guild_following(db, clock, ["A"])
    await turn_on(db)
    await listed(db, clock, [row(1, clock)])
    one, two = Announcer(db, discord, clock=clock), Announcer(db, discord, clock=clock)
    await asyncio.gather(one.run(), two.run())
    assert len(discord.posts(DEFAULT)) == 1
    await listed(db, clock, [row(1, clock, days=30)])
    await asyncio.gather(one.run(), two.run())
    [message] = discord.posts(DEFAULT)
    assert message.edits == 1


async def test_a_failed_edit_is_made_at_the_next_look(db, clock, discord, announcer):
    await guild_following(db, clock, ["A"])
    await turn_on(db)
    await listed(db, clock, [row(1, clock)])
    await announcer.run()
    await listed(db, clock, [row(1, clock, days=30)])
    discord.fail["edit_message"] = RuntimeError("502 Bad Gateway")
    [result] = await announcer.run()
    assert result.edited == 0 and result.errors
    await announcer.run()
    [message] = discord.posts(DEFAULT)
    assert message.edits == 1 and "postponed" in message.content


# --- exactly once across lost answers and crashes ---------------------------------------------------


async def test_a_lost_answer_is_settled_from_the_channel(db, clock, discord, announcer):
    await guild_following(db, clock, ["A"])
    await turn_on(db)
    await listed(db, clock, [row(1, clock)])
    discord.fail["send"] = RuntimeError("503")
    discord.create_then_fail.add("send")  # Discord made the message; the answer was lost
    [result] = await announcer.run()
    assert result.posted == 1
    await announcer.run()
    [message] = discord.posts(DEFAULT)
    [(post, _g)] = await posted_rows(db)
    assert post.message_id == message.id


async def test_a_crash_between_send_and_confirm_posts_once(db, clock, discord, monkeypatch):
    await guild_following(db, clock, ["A"])
    await turn_on(db)
    await listed(db, clock, [row(1, clock), row(2, clock, days=21)])
    dead = Announcer(db, discord, clock=clock)

    async def crash(*args: object, **kwargs: object) -> bool:
        raise asyncio.CancelledError  # the process dies between send and confirm

    with monkeypatch.context() as m:
        m.setattr(upcoming, "confirm", crash)
        with pytest.raises(asyncio.CancelledError):
            await dead.run()
    assert len(discord.posts(DEFAULT)) == 1  # record 1 sent, not confirmed; record 2 not reached
    clock.advance(minutes=1)
    restarted = Announcer(db, discord, clock=clock)
    [result] = await restarted.run()
    assert result.settled == 1 and result.posted == 1
    assert [m.content.split(" · ")[0] for m in discord.posts(DEFAULT)] == [
        "Announced: *Record 1* — Artist A",
        "Announced: *Record 2* — Artist A",
    ]
    assert len(await posted_rows(db)) == 2


async def test_a_claim_whose_message_never_came_is_posted_again(db, clock, discord):
    await guild_following(db, clock, ["A"])
    await turn_on(db)
    await listed(db, clock, [row(1, clock)])
    async with db.transaction() as session:  # an earlier process claimed and died before sending
        await upcoming.claim(
            session,
            GUILD,
            mbid(1),
            channel_id=DEFAULT,
            destination="message",
            content="Announced: *Record 1* — Artist A · out …",
            shown_date=clock().date(),
            owner=None,
            now=clock(),
        )
    clock.advance(minutes=1)
    announcer = Announcer(db, discord, clock=clock)
    [result] = await announcer.run()
    assert result.settled == 1 and result.posted == 1 and len(discord.posts(DEFAULT)) == 1


# --- out now: the release's post replies -----------------------------------------------------------


async def match(db: Database, n: int, release_id: str, clock: FakeClock) -> None:
    async with db.transaction() as session:
        assert await musicdata.record_match(session, mbid(n), release_id, "title", now=clock())


async def test_the_release_post_replies_to_its_announcement(db, clock, discord, announcer):
    await guild_following(db, clock, ["A"])
    await turn_on(db)
    await listed(db, clock, [row(1, clock)])
    await announcer.run()
    [announcement] = discord.posts(DEFAULT)
    await release(db, clock, "rel1", "Record 1", album_type="album", total_tracks=10)
    await release(db, clock, "rel2", "Another")
    await match(db, 1, "rel1", clock)
    result = await Deliverer(db, discord, clock=clock).deliver(GUILD)
    assert result.posted == 2 and result.messages == 2
    _, reply, digest = discord.posts(DEFAULT)
    assert reply.reply_to == announcement.id and reply.content == "Out now!"
    assert reply.urls == ["https://open.spotify.com/album/rel1"]
    assert digest.reply_to is None and digest.urls == ["https://open.spotify.com/album/rel2"]
    await announcer.run()  # matched: no edit any more
    assert announcement.edits == 0


async def test_in_a_forum_the_release_goes_into_the_announcements_thread(db, clock, discord, announcer):
    await guild_following(db, clock, ["A"], channel_id=400)
    discord.add_channel(400, "forum", tags=["Album"])
    await turn_on(db)
    await listed(db, clock, [row(1, clock)])
    await announcer.run()
    [thread] = discord.forum_posts(400)
    await release(db, clock, "rel1", "Record 1", album_type="album", total_tracks=10)
    await match(db, 1, "rel1", clock)
    deliverer = Deliverer(db, discord, clock=clock)
    await deliverer.deliver(GUILD)
    await deliverer.deliver(GUILD)
    assert len(discord.forum_posts(400)) == 1
    _starter, out_now = discord.posts(thread.id)
    assert out_now.content == "Out now!" and out_now.urls == ["https://open.spotify.com/album/rel1"]


async def test_a_release_routed_elsewhere_is_posted_as_usual(db, clock, discord, announcer):
    await guild_following(db, clock, ["A"])
    await turn_on(db)
    await listed(db, clock, [row(1, clock)])
    await announcer.run()
    async with db.transaction() as session:  # albums go elsewhere now: no reply across channels
        await routes.set_route(session, GUILD, "type", "album", 600)
    await release(db, clock, "rel1", "Record 1", album_type="album", total_tracks=10)
    await match(db, 1, "rel1", clock)
    await Deliverer(db, discord, clock=clock).deliver(GUILD)
    [post] = discord.posts(600)
    assert post.reply_to is None and post.content is None


async def test_the_guild_row_defaults_to_off(db, clock):
    await guild_following(db, clock, ["A"])
    async with db.sessions() as session:
        guild = await session.get(Guild, GUILD)
    assert guild is not None and guild.upcoming is False
