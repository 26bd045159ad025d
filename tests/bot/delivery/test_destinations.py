"""Destinations: artist route > type route > default channel, one destination per release; text,
forum and announcement channels; a route to a channel that is gone; forum posts settled after a crash."""

from __future__ import annotations

import pytest

from bot.delivery import Deliverer
from bot.delivery.destinations import followed_artists, group_by_channel, route
from bot.delivery.planner import Announcement
from bot.delivery.render import forum_post_title
from bot.delivery.types import guild_release_type
from storage import guilds
from storage.models import Delivery, Release
from storage.routes import GuildRoutes
from tests.bot.delivery.fake_discord import FakeDiscord
from tests.bot.delivery.world import DEFAULT, GUILD, guild_following, release, set_guild, url
from tests.bot.delivery.world import route as add_route
from tests.bot.helpers import ledger


@pytest.fixture
def discord(clock) -> FakeDiscord:
    return FakeDiscord(clock=clock)


@pytest.fixture
def deliverer(db, discord, clock) -> Deliverer:
    return Deliverer(db, discord, clock=clock)


def rel(rid: str, artists: list[str], album_type: str = "single", total_tracks: int = 1) -> Release:
    return Release(
        id=rid,
        name=f"Song {rid}",
        album_type=album_type,
        total_tracks=total_tracks,
        artists=[{"id": a, "name": f"Artist {a}"} for a in artists],
        release_date="2026-11-20",
        release_date_precision="day",
    )


# --- the rules, pure ------------------------------------------------------------------------------


def test_artist_route_beats_type_route_beats_default():
    routes = GuildRoutes(by_type={"single": 2, "album": 3}, by_artist={"B": 4, "C": 5})
    followed = {"A", "B", "C"}

    def channel(release: Release, links=None) -> int | None:
        links = links or {(release.artists[0]["id"], release.album_type)}
        return route(
            Announcement(release), links=links, followed=followed, routes=routes, default_channel_id=1
        ).channel_id

    assert channel(rel("r1", ["A"], "compilation")) == 1  # no route: the default channel
    assert channel(rel("r2", ["A"])) == 2  # type route
    assert channel(rel("r3", ["A", "B"])) == 4  # an artist route beats the type route, whoever is first
    assert channel(rel("r4", ["C", "B"])) == 5  # several artist routes: the first in the release's order
    assert channel(rel("r5", ["B", "C"])) == 4
    routed = route(
        Announcement(rel("r6", ["A"])), links={("A", "single")}, followed=followed, routes=routes, default_channel_id=1
    )
    assert routed.routed and routed.release_type == "single" and routed.artist_ids == ("A",)


def test_only_followed_artists_route_and_linked_artists_count_after_the_credited_ones():
    routes = GuildRoutes(by_artist={"X": 7, "Z": 8})
    # X is credited but not followed (a stale route); Z is followed and lists the release as an appearance
    release = rel("r1", ["X", "A"])
    links = {("A", "single"), ("Z", "appears_on")}
    assert followed_artists(Announcement(release), {"A", "Z"}, ["Z", "A"]) == ["A", "Z"]
    routed = route(Announcement(release), links=links, followed={"A", "Z"}, routes=routes, default_channel_id=1)
    assert routed.channel_id == 8 and routed.artist_ids == ("A", "Z")


def test_type_as_the_guild_gets_it():
    assert guild_release_type("single", 5, {"single"}) == "ep"
    assert guild_release_type("single", 3, {"single"}) == "single"
    assert guild_release_type("album", 12, {"appears_on"}) == "appears_on"
    assert guild_release_type("album", 12, {"appears_on", "album"}) == "album"  # a followed artist's own album
    routes = GuildRoutes(by_type={"ep": 3, "appears_on": 4})
    ep = route(
        Announcement(rel("e", ["A"], total_tracks=6)),
        links={("A", "single")},
        followed={"A"},
        routes=routes,
        default_channel_id=1,
    )
    guest = route(
        Announcement(rel("g", ["Q"], "album")),
        links={("A", "appears_on")},
        followed={"A"},
        routes=routes,
        default_channel_id=1,
    )
    assert (ep.channel_id, ep.release_type) == (3, "ep") and (guest.channel_id, guest.release_type) == (4, "appears_on")


def test_grouping_keeps_the_order():
    routes = GuildRoutes(by_type={"album": 9})
    items = [
        route(
            Announcement(rel(rid, ["A"], kind)),
            links={("A", kind)},
            followed={"A"},
            routes=routes,
            default_channel_id=None,
        )
        for rid, kind in [("1", "single"), ("2", "album"), ("3", "single"), ("4", "album")]
    ]
    groups = group_by_channel(items)
    assert list(groups) == [None, 9]
    assert [i.announcement.release.id for i in groups[None]] == ["1", "3"]
    assert [i.announcement.release.id for i in groups[9]] == ["2", "4"]


def test_forum_title_is_artist_dash_title_within_100_characters():
    assert forum_post_title(rel("r", ["A", "B"])) == "Artist A, Artist B — Song r"
    many = rel("r", [f"Z{i:02d}" for i in range(12)])
    title = forum_post_title(many)
    assert len(title) <= 100 and title.endswith(" more — Song r") and title.startswith("Artist Z00, Artist Z01")
    long = rel("r", ["A"])
    long.name = "x" * 150
    assert len(forum_post_title(long)) == 100 and forum_post_title(long).startswith("Artist A — xxx")


# --- delivery -------------------------------------------------------------------------------------


async def test_each_release_goes_to_exactly_one_destination(db, clock, discord, deliverer):
    await guild_following(db, clock, ["A", "B"])
    discord.add_channel(200)
    discord.add_channel(300)
    await add_route(db, "type", "single", 200)
    await add_route(db, "artist", "B", 300)
    await add_route(db, "artist", "X", 400)  # an artist the guild does not follow
    await release(db, clock, "album1", artists=["A"], album_type="album", total_tracks=10)
    await release(db, clock, "single1", artists=["A"])
    await release(db, clock, "duet", artists=["A", "B"], links=[("A", "single"), ("B", "single")])
    await release(db, clock, "feat", artists=["X", "A"], links=[("A", "single")])
    result = await deliverer.deliver(GUILD, run_id=1)
    assert result.ok and result.posted == 4 and result.pending == 0 and result.messages == 3
    assert discord.urls(DEFAULT) == [url("album1")]
    assert discord.urls(200) == [url("single1"), url("feat")]  # one digest message
    assert discord.urls(300) == [url("duet")]
    assert discord.posts(400) == []
    rows = {r.release_id: r for r in await ledger(db, GUILD)}
    assert {rid: (r.status, r.channel_id, r.destination) for rid, r in rows.items()} == {
        "album1": ("sent", DEFAULT, "message"),
        "single1": ("sent", 200, "message"),
        "feat": ("sent", 200, "message"),
        "duet": ("sent", 300, "message"),
    }
    assert (await deliverer.deliver(GUILD)).posted == 0  # each once


async def test_a_routed_release_is_posted_without_a_default_channel(db, clock, discord, deliverer):
    await guild_following(db, clock, ["A"], channel_id=None)
    await add_route(db, "type", "single", 200)
    await release(db, clock, "s1")
    await release(db, clock, "a1", album_type="album", total_tracks=9)
    result = await deliverer.deliver(GUILD)
    assert result.posted == 1 and result.pending == 1 and result.problem == "no channel set" and result.ok
    assert discord.urls(200) == [url("s1")]


async def test_a_route_to_a_gone_channel_keeps_its_releases_and_names_the_channel(db, clock, discord, deliverer):
    await guild_following(db, clock, ["A"])
    discord.add_channel(200)
    discord.channels[200].gone = True
    await add_route(db, "type", "single", 200)
    await release(db, clock, "s1")
    await release(db, clock, "a1", album_type="album", total_tracks=9)
    result = await deliverer.deliver(GUILD)
    assert result.posted == 1 and result.pending == 1 and not result.ok
    assert result.problem == "route to <#200>: the chosen channel no longer exists"
    assert discord.urls(DEFAULT) == [url("a1")]
    assert {r.release_id for r in await ledger(db, GUILD)} == {"a1"}  # s1 stays pending, unclaimed
    async with db.transaction() as s:
        assert await guilds.take_channel_notice(s, GUILD) == (DEFAULT, result.problem)

    discord.channels[200].gone = False  # fixed (or the route changed)
    again = await deliverer.deliver(GUILD)
    assert again.posted == 1 and again.ok and again.problem is None
    assert discord.urls(200) == [url("s1")]
    async with db.transaction() as s:
        settings = await guilds.delivery_settings(s, GUILD)
    assert settings is not None and settings.channel_problem is None


async def test_forbidden_default_and_route_are_both_named(db, clock, discord, deliverer):
    await guild_following(db, clock, ["A"])
    discord.add_channel(DEFAULT)
    discord.channels[DEFAULT].forbidden = True
    discord.add_channel(200)
    discord.channels[200].forbidden = True
    await add_route(db, "type", "single", 200)
    await release(db, clock, "s1")
    await release(db, clock, "a1", album_type="album", total_tracks=9)
    result = await deliverer.deliver(GUILD)
    assert result.posted == 0 and result.pending == 2
    assert result.problem == (
        "the bot is not allowed to post in the chosen channel; "
        "route to <#200>: the bot is not allowed to post in the chosen channel"
    )
    assert await ledger(db, GUILD) == []


async def test_forum_posts_one_per_release_titled_and_tagged(db, clock, discord, deliverer):
    await guild_following(db, clock, ["A", "B"])
    discord.add_channel(600, "forum", tags=["Album", "Single"])
    await add_route(db, "type", "album", 600)
    await add_route(db, "type", "single", 600)
    await add_route(db, "type", "ep", 600)
    await release(db, clock, "alb", "Dawn", artists=["A", "B"], album_type="album", total_tracks=11)
    await release(db, clock, "sgl", "Dusk", artists=["B"], links=[("B", "single")])
    await release(db, clock, "ep1", "Noon", artists=["A"], total_tracks=5)
    result = await deliverer.deliver(GUILD)
    assert result.posted == 3 and result.messages == 3 and result.ok
    posts = discord.forum_posts(600)
    forum = discord.channels[600]
    assert [(p.name, p.tag_ids) for p in posts] == [
        ("Artist A, Artist B — Dawn", [forum.tags["Album"]]),
        ("Artist B — Dusk", [forum.tags["Single"]]),
        ("Artist A — Noon", []),  # no EP tag, and the bot may not add one
    ]
    assert "EP" not in forum.tags and discord.requests["create_forum_tags"] == 0
    assert [discord.starter(p.id).urls for p in posts] == [[url("alb")], [url("sgl")], [url("ep1")]]
    assert all(discord.starter(p.id).buttons is not None for p in posts)
    rows = {r.release_id: r for r in await ledger(db, GUILD)}
    assert {rid: (r.destination, r.channel_id, r.message_id) for rid, r in rows.items()} == {
        p_rid: ("forum", 600, p.id) for p_rid, p in zip(["alb", "sgl", "ep1"], posts, strict=True)
    }


async def test_missing_forum_tags_are_created_when_the_bot_may_and_there_is_room(db, clock, discord, deliverer):
    await guild_following(db, clock, ["A"])
    discord.add_channel(600, "forum", tags=["Album"], may_manage=True)
    discord.add_channel(601, "forum", tags=[f"T{i}" for i in range(20)], may_manage=True)  # full
    await add_route(db, "type", "ep", 600)
    await add_route(db, "type", "single", 601)
    await release(db, clock, "ep1", total_tracks=4)
    await release(db, clock, "s1", total_tracks=1)
    assert (await deliverer.deliver(GUILD)).posted == 2
    assert list(discord.channels[600].tags) == ["Album", "EP"]
    [ep_post] = discord.forum_posts(600)
    assert ep_post.tag_ids == [discord.channels[600].tags["EP"]]
    [single_post] = discord.forum_posts(601)
    assert single_post.tag_ids == [] and len(discord.channels[601].tags) == 20
    assert discord.requests["create_forum_tags"] == 1


async def test_a_forum_post_left_unconfirmed_is_found_among_the_threads(db, clock, discord):
    await guild_following(db, clock, ["A"])
    discord.add_channel(600, "forum", tags=["Single"])
    await add_route(db, "type", "single", 600)
    await release(db, clock, "s1", "One")
    await release(db, clock, "s2", "Two")
    first = Deliverer(db, discord, clock=clock)
    # The post is created, the answer is lost (a timeout), the bot cannot read the forum just then:
    discord.fail["create_forum_post"] = TimeoutError()
    discord.create_then_fail.add("create_forum_post")
    discord.fail["find_forum_posts"] = RuntimeError("502")
    result = await first.deliver(GUILD)
    assert result.error and result.posted == 0
    assert [p.name for p in discord.forum_posts(600)] == ["Artist A — One"]
    assert [(r.release_id, r.status) for r in await ledger(db, GUILD)] == [("s1", "claimed")]

    clock.advance(minutes=5)  # a restarted process settles it from the forum: found, not posted again
    second = Deliverer(db, discord, clock=clock)
    recovered = await second.recover()
    assert (recovered.confirmed, recovered.released) == (1, 0)
    rows = {r.release_id: r for r in await ledger(db, GUILD)}
    assert rows["s1"].status == "sent" and rows["s1"].message_id == discord.forum_posts(600)[0].id
    assert (await second.deliver(GUILD)).posted == 1
    assert [p.name for p in discord.forum_posts(600)] == ["Artist A — One", "Artist A — Two"]


async def test_a_forum_claim_without_its_post_is_released_and_posted_once(db, clock, discord):
    await guild_following(db, clock, ["A"])
    discord.add_channel(600, "forum")
    await add_route(db, "type", "single", 600)
    await release(db, clock, "s1")
    async with db.sessions() as s:  # killed between the claim and the post
        s.add(
            Delivery(
                guild_id=GUILD,
                release_id="s1",
                status="claimed",
                channel_id=600,
                destination="forum",
                claimed_at=clock(),
            )
        )
        await s.commit()
    clock.advance(seconds=5)
    deliverer = Deliverer(db, discord, clock=clock)
    assert (await deliverer.recover()).released == 1
    assert (await deliverer.deliver(GUILD)).posted == 1
    assert len(discord.forum_posts(600)) == 1


async def test_announcement_channel_posts_are_crossposted_when_the_guild_publishes(db, clock, discord, deliverer):
    await guild_following(db, clock, ["A"])
    discord.add_channel(DEFAULT, "announcement")
    await release(db, clock, "s1")
    await deliverer.deliver(GUILD)
    assert discord.crossposts == [] and [r.publish_state for r in await ledger(db, GUILD)] == [None]

    await set_guild(db, publish=True)
    await release(db, clock, "s2")
    await deliverer.deliver(GUILD)
    [message] = discord.embedded(DEFAULT)[1:]
    assert discord.crossposts == [message.id]
    assert {r.release_id: r.publish_state for r in await ledger(db, GUILD)} == {"s1": None, "s2": "done"}


async def test_a_text_channel_is_never_crossposted(db, clock, discord, deliverer):
    await guild_following(db, clock, ["A"])
    await set_guild(db, publish=True)
    await release(db, clock, "s1")
    assert (await deliverer.deliver(GUILD)).posted == 1
    assert discord.requests["crosspost"] == 0 and [r.publish_state for r in await ledger(db, GUILD)] == [None]
