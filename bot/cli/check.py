"""``release-bot check``: one tracking pass without Discord, on the bot's own database.

The first pass over an artist takes its silent baseline; each later pass prints the
releases first seen in it (``--json``: one object per line). The pass is recorded in
the run history (trigger ``check``); what it finds is not marked posted, so the
bot still announces it to the guilds that follow the artist.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import aiohttp

from bot.clock import Clock
from bot.delivery.planner import fold_twins
from bot.delivery.render import format_release_date
from bot.scheduling.runner import RunSummary
from bot.settings import Settings
from bot.spotify.links import detect_spotify_kind, parse_spotify_id
from bot.wiring import Sleep, build_core
from storage import catalog, guilds
from storage.db import Database
from storage.models import Release


def release_record(release: Release, also: Sequence[Release] = ()) -> dict[str, Any]:
    """The ``--json`` line of a release: album id, url, artists (names), name, album type, release date,
    and ``also``: the album ids of other editions folded into it (a "Clean" twin first seen in the same pass)."""
    return {
        "album_id": release.id,
        "url": f"https://open.spotify.com/album/{release.id}",
        "artists": [a.get("name") for a in release.artists],
        "name": release.name,
        "album_type": release.album_type,
        "release_date": release.release_date,
        "release_date_precision": release.release_date_precision,
        "also": [t.id for t in also],
    }


def format_profile(metrics: dict[str, Any]) -> list[str]:
    """``release-bot check --profile``: the run's metrics (``runs.metrics``) as readable lines."""
    m = metrics or {}
    lines = ["profile:"]
    requests = m.get("requests", 0)
    lower = m.get("lower_bound", 0)
    ratio = f" ({requests / lower:.2f} × L)" if lower else ""
    lines.append(f"  requests        {requests}{ratio}")
    by = m.get("requests_by_endpoint") or {}
    lines.append("  by endpoint     " + (", ".join(f"{k} {v}" for k, v in sorted(by.items())) or "none"))
    lines.append(f"  lower bound L   {lower} (label requests {m.get('label_requests', 0)})")
    plan = m.get("recheck_plan") or {}
    lower_b = m.get("lower_bound_recheck")
    over = m.get("requests_over_lb")
    lines.append(
        f"  lower bound L_B {'–' if lower_b is None else lower_b} (L + the re-check's fair share "
        f"{plan.get('fair_share', 0)} pages); requests ÷ L_B {'–' if over is None else f'{over:.3f}'}"
    )
    lines.append(f"  pages skipped   {m.get('pages_skipped', 0)} of {m.get('naive_pages', 0)} a full walk would fetch")
    lines.append(f"  429s            {m.get('rate_limited', 0)}")
    budget = m.get("budget")
    lines.append(
        f"  budget          {'unlimited' if budget is None else budget}; carried over {m.get('carried_over', 0)}"
        f"; coverage {m.get('coverage', 1.0):.0%}"
    )
    lines.append(
        f"  artists         {m.get('artists_checked', 0)}/{m.get('artists_due', 0)} checked, "
        f"{m.get('changed', 0)} changed, {m.get('fallbacks', 0)} exact fallbacks, "
        f"{m.get('back_catalogue', 0)} back-catalogue, {m.get('economy_skipped', 0)} economy-skipped"
    )
    lines.append(
        f"  exact re-check  {m.get('rechecked', 0)} artists read whole, {m.get('recheck_requests', 0)} pages "
        f"beyond their probe (planned {plan.get('planned', 0)}, even share {plan.get('even_share', 0)} of "
        f"{plan.get('cycle', 0)} per {plan.get('period_runs', 0)} runs, forced {plan.get('forced', 0)}, "
        f"overdue {plan.get('overdue', 0)}); {m.get('folded', 0)} later editions folded"
    )
    phases = m.get("phase_seconds") or {}
    lines.append(
        "  seconds         " + ", ".join(f"{k} {phases.get(k, 0.0):.3f}" for k in ("plan", "track", "label", "deliver"))
    )
    return lines


async def run_check(
    settings: Settings,
    artist_args: list[str],
    *,
    as_json: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    clock: Clock | None = None,
    session: aiohttp.ClientSession | None = None,
    sleep: Sleep = asyncio.sleep,
    profile: bool = False,
) -> int:
    """Run one pass; returns the exit status (0 ok, 1 some artist could not be checked, 2 bad input).

    ``clock`` (aware UTC now; None: the database's clock), ``session`` (the Spotify client's HTTP
    session) and ``sleep`` (its waits, seconds) are injectable for tests (:func:`bot.wiring.build_core`).
    ``profile``: print the run's metrics (requests by endpoint, L and L_B, pages skipped, 429s,
    the re-check's pages, seconds per phase) to ``err``; with ``as_json`` also one JSON object ``{"profile": …}`` on ``err``.
    """
    ids = parse_artist_args(artist_args, err)
    if ids is None:
        return 2
    # `check` is one more process on the bot's store: it claims artists, reserves the day budget
    # and honours the cooldown like the bot's processes (docs/multiprocess.md). No sender: a
    # tracking-only runner, it posts nothing.
    async with await build_core(settings, clock=clock, session=session, sleep=sleep) as core:
        if not ids:
            ids = await _followed_artists(core.db)
            if not ids:
                print("check: no artists: pass --artist ID, or follow some from Discord first", file=err)
                return 2
        summary = await core.runner.run("check", artist_ids=ids)
        await _report(core.db, summary, ids, as_json=as_json, out=out, err=err)
        if profile:
            _print_profile(summary.metrics, as_json=as_json, err=err)
        return 1 if summary.failed_artists else 0


def parse_artist_args(artist_args: Sequence[str], err: TextIO) -> list[str] | None:
    """The Spotify artist ids of ``--artist`` arguments (ids, URLs or URIs: ``bot.spotify.links``);
    None after telling ``err`` which argument is not an artist."""
    ids: list[str] = []
    for arg in artist_args:
        artist_id = parse_spotify_id(arg, "artist")
        if artist_id is None:
            kind = detect_spotify_kind(arg)
            what = f"a Spotify {kind} link" if kind and kind != "artist" else "not a Spotify artist id, URL or URI"
            print(f"check: --artist {arg!r}: {what}", file=err)
            return None
        ids.append(artist_id)
    return ids


async def _followed_artists(db: Database) -> list[str]:
    """Every artist some guild follows (the pass when no ``--artist`` is given)."""
    async with db.transaction() as session:
        return await guilds.followed_artist_ids(session)


async def _report(
    db: Database, summary: RunSummary, ids: list[str], *, as_json: bool, out: TextIO, err: TextIO
) -> None:
    """Print the pass: baselines and failures to ``err``, the releases first seen to ``out`` (one line
    each; ``as_json``: :func:`release_record` objects), then the counts to ``err``."""
    async with db.transaction() as session:
        names = await catalog.artist_names(session, ids)
        releases = await catalog.releases_by_ids(session, summary.new_release_ids)
    for artist_id in summary.baselined:
        print(f"baseline: {names.get(artist_id, artist_id)} — what is already out is recorded, not new", file=err)
    # Each release once in its life (the tracker announces a release id once, and never a
    # later edition of a known one); clean/explicit twins first seen together print as one.
    for announcement in fold_twins([releases[r] for r in summary.new_release_ids]):
        if as_json:
            print(json.dumps(release_record(announcement.release, announcement.twins), ensure_ascii=False), file=out)
        else:
            print(release_line(announcement.release, announcement.twins), file=out)
    for failed in summary.failed_artists:
        print(f"could not check {failed.name}: {failed.reason} (checked again next pass)", file=err)
    print(
        f"checked {summary.artists_checked}/{summary.artists_due} artists, {summary.releases_found} new, "
        f"{summary.spotify_requests} Spotify requests",
        file=err,
    )


def release_line(release: Release, also: Sequence[Release] = ()) -> str:
    """The text line of a release first seen: album type, artists, name, release date, URL and the
    other editions folded into it."""
    artists = ", ".join(a.get("name") or "?" for a in release.artists)
    folded = "".join(f" (also: {t.name})" for t in also)
    return (
        f"NEW {release.album_type:<11} {artists} — {release.name} "
        f"({format_release_date(release.release_date, release.release_date_precision)}) "
        f"https://open.spotify.com/album/{release.id}{folded}"
    )


def _print_profile(metrics: dict[str, Any], *, as_json: bool, err: TextIO) -> None:
    """``--profile``: :func:`format_profile` lines to ``err``, and with ``as_json`` the metrics object too."""
    for line in format_profile(metrics):
        print(line, file=err)
    if as_json:
        print(json.dumps({"profile": metrics}), file=err)
