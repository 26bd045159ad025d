"""``/settings filters`` in the planner: title keywords, muted appearances, skipped for good."""

from __future__ import annotations

import pytest

from bot.delivery import Deliverer, split_pending
from bot.delivery.planner import FILTER_KEYWORDS, GuildFilters, plan_pending, skip_reason, title_filter
from bot.delivery.render import role_mention
from storage.models import Guild, Release
from tests.bot.delivery.helpers import album, found, set_groups
from tests.bot.helpers import FakeSender, add_guild, follow, ledger

ALL = frozenset(FILTER_KEYWORDS)


@pytest.mark.parametrize(
    "title, kind",
    [
        ("Midnight Drive (Remix)", "remix"),
        ("Midnight Drive - Remixes", "remix"),
        ("Song (Tiësto RMX)", "remix"),
        ("Remixed & Revisited", "remix"),
        ("Afterglow (Live)", "live"),
        ("Afterglow [Live at Wembley]", "live"),
        ("Afterglow - Live", "live"),
        ("Live at the Roundhouse", "live"),
        ("Live From Berlin", "live"),
        ("MTV Unplugged", "live"),
        ("Song (Sped Up)", "sped_up"),
        ("Song - sped-up version", "sped_up"),
        ("Song (Slowed + Reverb)", "sped_up"),
        ("Song (Nightcore)", "sped_up"),
        ("Song (Speed Up)", "sped_up"),
        ("Afterglow (Instrumental)", "instrumental"),
        ("Instrumentals Vol. 2", "instrumental"),
        ("Song (Karaoke Version)", "instrumental"),
    ],
)
def test_title_keywords_case_insensitive(title, kind):
    release = Release(name=title, labels=[])
    assert title_filter(release, ALL) == kind
    assert title_filter(Release(name=title.upper(), labels=[]), ALL) == kind
    assert title_filter(release, ALL - {kind}) is None


@pytest.mark.parametrize(
    "title",
    [
        "Live Forever",
        "Alive",
        "Oliver's Army",
        "Deliverance",
        "Remixology Street?",
        "Speedway",
        "Slow Down",
        "Instrument of Peace",
        "Lively",
    ],
)
def test_titles_that_are_not_versions_pass(title):
    assert title_filter(Release(name=title, labels=[]), ALL) is None


def test_remix_label_counts_as_remix():
    release = Release(name="Midnight Drive (Club Edit)", labels=[{"kind": "remix_of", "name": "Midnight Drive"}])
    assert title_filter(release, {"remix"}) == "remix"
    assert title_filter(release, {"live"}) is None


def test_skip_reason_muted_appearances_only_when_every_link_is_a_muted_appearance():
    filters = GuildFilters(mute_appearances=frozenset({"A"}))
    groups = {"album", "single", "appears_on"}
    release = Release(name="Duet", labels=[], artists=[], album_type="single", total_tracks=1)
    assert skip_reason(release, {("A", "appears_on")}, groups, filters) == "muted"
    assert skip_reason(release, {("A", "appears_on"), ("B", "single")}, groups, filters) is None
    assert skip_reason(release, {("A", "album")}, groups, filters) is None  # A's own release
    assert skip_reason(release, {("B", "appears_on")}, groups, filters) is None
    assert skip_reason(release, {("A", "appears_on")}, {"album"}, filters) == "type"
    # Stored as "single" (no album_group in 2026 listings) but A is not one of the release's artists.
    featured = Release(
        name="Feature", labels=[], artists=[{"id": "X", "name": "X"}], album_type="single", total_tracks=1
    )
    assert skip_reason(featured, {("A", "single")}, groups, filters) == "muted"
    own = Release(name="Own", labels=[], artists=[{"id": "A", "name": "A"}], album_type="single", total_tracks=1)
    assert skip_reason(own, {("A", "single")}, groups, filters) is None


def test_filters_json_round_trip():
    f = GuildFilters.from_json({"skip": ["live", "bogus", "remix"], "mute_appearances": ["Z", "A"]})
    assert f.skip == {"live", "remix"}
    assert f.to_json() == {"skip": ["remix", "live"], "mute_appearances": ["A", "Z"]}
    assert GuildFilters.from_json(None) == GuildFilters()


def test_role_mention_allows_only_that_role():
    assert role_mention(None) == (None, {"parse": []})
    content, allowed = role_mention(123)
    assert content == "<@&123>" and allowed == {"parse": [], "roles": ["123"], "replied_user": False}


async def set_filters(db, guild_id: int, data: dict) -> None:
    async with db.sessions() as s:
        (await s.get(Guild, guild_id)).filters = data
        await s.commit()


async def test_filtered_releases_are_skipped_for_good(db, clock):
    await add_guild(db, 1, now=clock())
    await follow(db, 1, "A", now=clock())
    await follow(db, 1, "B", now=clock())
    await set_groups(db, 1, ["album", "single", "appears_on"])
    await set_filters(db, 1, {"skip": ["remix", "live"], "mute_appearances": ["A"]})
    clock.advance(hours=1)
    await found(db, "A", album("new", "Afterglow"), "album", clock())
    await found(db, "A", album("rmx", "Afterglow (Remixes)"), "album", clock())
    await found(db, "A", album("liv", "Afterglow (Live)", "single"), "single", clock())
    await found(db, "A", album("app", "Guest Spot"), "appears_on", clock())
    await found(db, "B", album("duo", "Duet", "single"), "single", clock())
    await found(db, "A", album("duo", "Duet", "single"), "appears_on", clock())

    async with db.sessions() as s:
        plan = await plan_pending(s, 1)
        wanted, unwanted = await split_pending(s, 1)
    assert [r.id for r in plan.wanted] == [r.id for r in wanted]
    assert {r.id for r in wanted} == {"new", "duo"}
    assert {(r.id, why) for r, why in plan.skipped} == {("rmx", "remix"), ("liv", "live"), ("app", "muted")}
    assert {r.id for r in unwanted} == {"rmx", "liv", "app"}

    sender = FakeSender()
    result = await Deliverer(db, sender, clock=clock).deliver(1, run_id=3)
    assert sorted(sender.titles()) == ["Afterglow", "Duet"] and result.skipped == 3
    rows = {r.release_id: r.status for r in await ledger(db, 1)}
    assert rows["rmx"] == rows["liv"] == rows["app"] == "skipped"

    # Turning the filters off later never posts the past.
    await set_filters(db, 1, {})
    result = await Deliverer(db, sender, clock=clock).deliver(1, run_id=4)
    assert result.posted == 0 and sorted(sender.titles()) == ["Afterglow", "Duet"]
