"""Where a release goes (``destination_of``: artist route > type route > default channel) and the release
type each pending release is posted as (EPs told from singles by their track count)."""

from __future__ import annotations

from bot.delivery.planner import Announcement, GuildFilters, destination_of, plan_pending, posted_type
from storage import routes
from storage.models import Release
from storage.routes import GuildRoutes
from tests.bot.delivery.helpers import album, found, set_groups
from tests.bot.helpers import add_guild, follow

DEFAULT = 100
ROUTES = GuildRoutes(by_type={"single": 200, "ep": 210, "appears_on": 220}, by_artist={"B": 300, "C": 310})


def release(*artists: str, album_type: str = "single", tracks: int = 1) -> Release:
    return Release(id="r", name="R", album_type=album_type, total_tracks=tracks, artists=[{"id": a} for a in artists])


def test_an_artist_route_wins_first_artist_in_the_releases_order():
    assert destination_of(release("C", "B"), "single", ROUTES, DEFAULT) == 310  # C is credited first
    assert destination_of(release("A", "B", "C"), "single", ROUTES, DEFAULT) == 300
    assert destination_of(release("A"), "single", ROUTES, DEFAULT, linked=("C",)) == 310  # its appearance
    assert destination_of(release("B"), "single", ROUTES, DEFAULT, linked=("C",)) == 300  # own artists first


def test_then_the_type_route_then_the_default_channel():
    assert destination_of(release("A"), "single", ROUTES, DEFAULT) == 200
    assert destination_of(release("A", tracks=5), "ep", ROUTES, DEFAULT) == 210
    assert destination_of(release("A"), "appears_on", ROUTES, DEFAULT, linked=("A",)) == 220
    assert destination_of(release("A", album_type="album"), "album", ROUTES, DEFAULT) == DEFAULT
    assert destination_of(release("A", album_type="album"), "album", ROUTES, None) is None  # waits for a channel
    assert destination_of(release("B"), None, GuildRoutes(), DEFAULT) == DEFAULT


def test_posted_type():
    assert posted_type(release("A", tracks=5), {("A", "single")}, {"single", "ep"}) == "ep"
    assert posted_type(release("A", tracks=3), {("A", "single")}, {"single", "ep"}) == "single"
    assert posted_type(release("A", tracks=5), {("A", "single")}, {"single"}) is None
    # Linked as B's single and as A's appearance: posted as the release's own type when wanted.
    duet = release("B", tracks=4)
    assert posted_type(duet, {("B", "single"), ("A", "appears_on")}, {"ep", "appears_on"}) == "ep"
    assert posted_type(duet, {("B", "single"), ("A", "appears_on")}, {"appears_on"}) == "appears_on"


async def test_the_plan_routes_each_release_to_one_channel(db, clock):
    await add_guild(db, 1, now=clock(), channel_id=DEFAULT)
    for artist in ("A", "B"):
        await follow(db, 1, artist, now=clock())
    await set_groups(db, 1, ["album", "single", "ep", "appears_on"])
    async with db.transaction() as s:
        await routes.set_route(s, 1, "type", "ep", 210)
        await routes.set_route(s, 1, "type", "appears_on", 220)
        await routes.set_route(s, 1, "artist", "B", 300)
    clock.advance(hours=1)
    await found(db, "A", album("lp", "LP"), "album", clock())
    await found(db, "A", album("ep", "Five", "single", tracks=5), "single", clock())
    await found(db, "A", album("sg", "One", "single"), "single", clock())
    await found(db, "A", album("bs", "B's EP", "single", tracks=4, artists=(("B", "B"),)), "single", clock())
    await found(db, "B", album("bs", "B's EP", "single", tracks=4, artists=(("B", "B"),)), "single", clock())
    await found(db, "A", album("gs", "Guest", artists=(("Z", "Z"),)), "appears_on", clock())
    async with db.sessions() as s:
        plan = await plan_pending(s, 1)
        mine = await routes.guild_routes(s, 1)
    assert plan.types == {"lp": "album", "ep": "ep", "sg": "single", "bs": "ep", "gs": "appears_on"}
    assert plan.linked["bs"] == ("A", "B") and plan.linked["gs"] == ("A",)
    announcements = [Announcement(r) for r in plan.wanted]
    where = {a.release.id: plan.destination(a, mine, DEFAULT) for a in announcements}
    assert where == {"lp": DEFAULT, "ep": 210, "sg": DEFAULT, "bs": 300, "gs": 220}
    grouped = plan.by_destination(announcements, mine, DEFAULT)
    assert [r.id for r in plan.wanted] == ["bs", "ep", "gs", "lp", "sg"]  # first seen together: by id
    assert [(channel, [a.release.id for a in group]) for channel, group in grouped] == [
        (300, ["bs"]),
        (210, ["ep"]),
        (220, ["gs"]),
        (DEFAULT, ["lp", "sg"]),  # the groups in the order of their first release, each in order
    ]


async def test_a_guild_that_does_not_post_eps_skips_them(db, clock):
    await add_guild(db, 1, now=clock())
    await follow(db, 1, "A", now=clock())
    await set_groups(db, 1, ["album", "single"])
    clock.advance(hours=1)
    await found(db, "A", album("ep", "Five", "single", tracks=6), "single", clock())
    await found(db, "A", album("sg", "Seven", "single", tracks=7), "single", clock())  # Spotify's word kept
    async with db.sessions() as s:
        plan = await plan_pending(s, 1, filters=GuildFilters())
    assert [r.id for r in plan.wanted] == ["sg"] and [(r.id, why) for r, why in plan.skipped] == [("ep", "type")]
