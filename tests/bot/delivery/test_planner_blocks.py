"""The block lists of ``/settings filters`` in the planner: title keywords (whole words, any case, Unicode),
RE2 title patterns (a catastrophic-backtracking pattern finishes fast), blocked artists (any artist the
release credits); what they block is skipped for good."""

from __future__ import annotations

import time

import pytest

from bot.delivery import Deliverer
from bot.delivery.planner import (
    BlockedArtist,
    GuildFilters,
    PatternError,
    blocked_artist,
    compile_pattern,
    credited_artists,
    keyword_matches,
    pattern_matches,
    plan_pending,
    skip_reason,
    title_blocked,
)
from storage.models import Guild, Release
from tests.bot.delivery.helpers import album, found
from tests.bot.helpers import FakeSender, add_guild, follow, ledger

TYPES = {"album", "single", "ep", "compilation"}


@pytest.mark.parametrize(
    "keyword, title",
    [
        ("live", "Afterglow (Live)"),
        ("live", "LIVE at Home"),
        ("Sped Up", "Song (sped  up)"),  # any whitespace between the keyword's words
        ("karaoke", "Song - Karaoke Version"),
        ("straße", "STRASSE"),  # Unicode case folding
        ("café", "Cafe\u0301 Nights"),  # composed keyword, decomposed title: NFKC
        ("ｌｉｖｅ", "Afterglow (Live)"),  # full-width letters: NFKC
        ("remix", "Tiësto Remix"),
        ("8D", "Song (8D Audio)"),
        ("(live)", "Afterglow (Live)"),  # a keyword may hold punctuation
    ],
)
def test_keywords_match_whole_words_in_any_case(keyword, title):
    assert keyword_matches(keyword, title)


@pytest.mark.parametrize(
    "keyword, title",
    [
        ("live", "Alive"),
        ("live", "Lively"),
        ("live", "Livestream"),
        ("remix", "Remixes"),  # whole words: the plural is another word
        ("über", "Überall"),  # a Unicode letter is a word character: no boundary inside "Überall"
        ("sped up", "speedup"),
        ("", "Anything"),
    ],
)
def test_keywords_do_not_match_inside_words(keyword, title):
    assert not keyword_matches(keyword, title)


def test_patterns_run_on_re2_case_insensitive():
    assert pattern_matches(r"\(8D( Audio)?\)$", "Song (8d audio)")
    assert pattern_matches(r"^intro", "INTRO (Reprise)")
    assert not pattern_matches(r"^intro$", "Intro (Reprise)")
    assert not pattern_matches("(", "(")  # a stored pattern RE2 no longer takes matches nothing
    with pytest.raises(PatternError, match=r"missing \)"):
        compile_pattern("(")


def test_a_catastrophic_backtracking_pattern_finishes_fast():
    title = "a" * 50_000 + "!"  # the classic input that makes a backtracking engine try 2^50000 ways
    started = time.perf_counter()
    assert not pattern_matches("(a+)+$", title)
    assert not title_blocked(title, (), ["(a+)+$", "(a|aa)+$", "(a*)*b"])
    assert time.perf_counter() - started < 1.0  # Python's re would take longer than the age of the universe
    assert pattern_matches("(a+)+$", "a" * 50_000)


def release(name: str, *artists: str, album_type: str = "album", tracks: int = 10) -> Release:
    return Release(
        id=name, name=name, labels=[], album_type=album_type, total_tracks=tracks, artists=[{"id": a} for a in artists]
    )


def test_blocked_artists_are_any_credited_artist():
    duet = release("Duet", "B", "X")
    assert credited_artists(duet, {("A", "appears_on"), ("B", "album")}) == ["B", "X", "A"]
    assert blocked_artist(duet, {("B", "album")}, {"X"})  # a featured artist nobody follows
    assert blocked_artist(duet, {("A", "appears_on")}, {"A"})  # credited on a track: its appears_on link
    assert not blocked_artist(duet, {("B", "album")}, {"Z"})
    assert not blocked_artist(duet, {("B", "album")}, set())


def test_skip_reasons_in_order():
    filters = GuildFilters(
        skip=frozenset({"remix"}),
        mute_appearances=frozenset({"A"}),
        block_keywords=("karaoke",),
        block_patterns=(r"\(8D\)",),
        block_artists=(BlockedArtist("X", "Stranger"),),
    )
    links = {("B", "album")}
    assert skip_reason(release("Duet", "B", "X"), links, TYPES, filters) == "block_artist"
    assert skip_reason(release("Song (Remix) (Karaoke)", "B"), links, TYPES, filters) == "remix"
    assert skip_reason(release("Song (Karaoke)", "B"), links, TYPES, filters) == "block_title"
    assert skip_reason(release("Song (8D)", "B"), links, TYPES, filters) == "block_title"
    assert skip_reason(release("Song (8D)", "B"), links, {"single"}, filters) == "type"
    assert skip_reason(release("Song", "B"), links, TYPES, filters) is None


def test_filters_json_round_trip_with_block_lists():
    data = {
        "skip": ["live"],
        "mute_appearances": [],
        "block_keywords": ["karaoke", " "],
        "block_patterns": ["^a$"],
        "block_artists": [{"id": "X", "name": "Stranger"}, {"name": "no id"}, "junk"],
    }
    filters = GuildFilters.from_json(data)
    assert filters.block_keywords == ("karaoke",) and filters.block_patterns == ("^a$",)
    assert filters.block_artists == (BlockedArtist("X", "Stranger"),) and filters.blocked_artist_ids == {"X"}
    assert GuildFilters.from_json(filters.to_json()) == filters
    assert GuildFilters(skip=frozenset({"live"})).to_json() == {"skip": ["live"], "mute_appearances": []}


async def set_filters(db, guild_id: int, data: dict) -> None:
    async with db.sessions() as s:
        (await s.get(Guild, guild_id)).filters = data
        await s.commit()


async def test_blocked_releases_are_skipped_for_good_and_only_in_that_guild(db, clock):
    for gid in (1, 2):
        await add_guild(db, gid, now=clock())
        await follow(db, gid, "A", now=clock())
    await set_filters(
        db,
        1,
        {"block_keywords": ["karaoke"], "block_patterns": [r"\(8D\)$"], "block_artists": [{"id": "X", "name": "X"}]},
    )
    clock.advance(hours=1)
    await found(db, "A", album("ok", "Afterglow"), "album", clock())
    await found(db, "A", album("kar", "Afterglow (Karaoke Version)"), "album", clock())
    await found(db, "A", album("8d", "Afterglow (8D)"), "album", clock())
    await found(db, "A", album("ft", "Duet", artists=(("A", "A"), ("X", "Stranger"))), "album", clock())

    async with db.sessions() as s:
        plan = await plan_pending(s, 1)
    assert [r.id for r in plan.wanted] == ["ok"]
    assert {(r.id, why) for r, why in plan.skipped} == {
        ("kar", "block_title"),
        ("8d", "block_title"),
        ("ft", "block_artist"),
    }
    one, two = FakeSender(), FakeSender()
    assert (await Deliverer(db, one, clock=clock).deliver(1)).skipped == 3
    assert (await Deliverer(db, two, clock=clock).deliver(2)).posted == 4  # guild 2 blocks nothing
    assert one.titles() == ["Afterglow"]
    assert {r.release_id: r.status for r in await ledger(db, 1)} == {
        "ok": "sent",
        "kar": "skipped",
        "8d": "skipped",
        "ft": "skipped",
    }
    await set_filters(db, 1, {})  # lifting the blocks never posts the past
    assert (await Deliverer(db, one, clock=clock).deliver(1)).posted == 0
