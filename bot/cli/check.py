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
from typing import TextIO

import aiohttp
from sqlalchemy import select

from bot.clock import utcnow
from bot.coordination.coordinator import coordinator_from_settings
from bot.delivery import Deliverer
from bot.delivery.planner import fold_twins
from bot.delivery.render import format_release_date
from bot.scheduling.runner import Runner
from bot.settings import Settings
from bot.spotify.client import SpotifyClient
from bot.spotify.links import detect_spotify_kind, parse_spotify_id
from bot.tracking import tracker_from_settings
from storage import catalog, guilds
from storage.db import open_database
from storage.models import Release


class _NoSender:
    """``check`` never posts; a Deliverer needs a sender all the same."""

    async def send(self, channel_id: int, embeds: list[dict], *, nonce: str) -> int:  # pragma: no cover
        raise RuntimeError("release-bot check does not post to Discord")


def release_record(release: Release, also: list[Release] = ()) -> dict:
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


def format_profile(metrics: dict) -> list[str]:
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
        f"  exact re-check  {m.get('rechecked', 0)} artists read whole, {m.get('recheck_requests', 0)} requests "
        f"beyond their probe; {m.get('folded', 0)} later editions folded"
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
    clock=utcnow,
    session: aiohttp.ClientSession | None = None,
    sleep=asyncio.sleep,
    profile: bool = False,
) -> int:
    """Run one pass; returns the exit status (0 ok, 1 some artist could not be checked, 2 bad input).

    ``clock`` (aware UTC now) and ``sleep`` (the Spotify client's waits, seconds) are injectable for tests.
    ``profile``: print the run's metrics (requests by endpoint, L, pages skipped, 429s,
    seconds per phase) to ``err``; with ``as_json`` also one JSON object ``{"profile": …}`` on ``err``.
    """
    ids: list[str] = []
    for arg in artist_args:
        artist_id = parse_spotify_id(arg, "artist")
        if artist_id is None:
            kind = detect_spotify_kind(arg)
            what = f"a Spotify {kind} link" if kind and kind != "artist" else "not a Spotify artist id, URL or URI"
            print(f"check: --artist {arg!r}: {what}", file=err)
            return 2
        ids.append(artist_id)
    db = await open_database(settings.database_url, **settings.database.engine_options())
    own_session = session is None
    http = session or aiohttp.ClientSession()
    coordinator = None
    try:
        spotify = SpotifyClient(
            client_id=settings.spotify.client_id.get_secret_value(),
            client_secret=settings.spotify.client_secret.get_secret_value(),
            api_base_url=settings.spotify.api_base_url,
            accounts_base_url=settings.spotify.accounts_base_url,
            market=settings.spotify.market,
            session=http,
            clock=clock,
            sleep=sleep,
            rate_limit_per_30s=settings.spotify.rate_limit_per_30s,
        )
        # `check` is one more process on the bot's store: it claims artists, reserves the day budget
        # and honours the cooldown like the bot's processes (docs/multiprocess.md).
        coordinator = coordinator_from_settings(db, settings, clock=None if clock is utcnow else clock)
        await coordinator.start()
        clock = coordinator.clock
        tracker = tracker_from_settings(db, spotify, settings, clock=clock, coordinator=coordinator)
        from bot.tracking.labels import Labeler

        runner = Runner(
            db,
            tracker,
            Deliverer(db, _NoSender(), clock=clock),
            clock=clock,
            labeler=Labeler(db, spotify, clock=clock),
            coordinator=coordinator,
        )
        if not ids:
            async with db.sessions() as s:
                ids = await guilds.followed_artist_ids(s)
            if not ids:
                print("check: no artists: pass --artist ID, or follow some from Discord first", file=err)
                return 2
        summary = await runner.run("check", artist_ids=ids)
        async with db.sessions() as s:
            names = await catalog.artist_names(s, ids)
            releases = {
                r.id: r for r in await s.scalars(select(Release).where(Release.id.in_(summary.new_release_ids)))
            }
        for artist_id in summary.baselined:
            print(f"baseline: {names.get(artist_id, artist_id)} — what is already out is recorded, not new", file=err)
        # Each release once in its life (the tracker announces a release id once, and never a
        # later edition of a known one); clean/explicit twins first seen together print as one.
        for announcement in fold_twins([releases[r] for r in summary.new_release_ids]):
            release = announcement.release
            if as_json:
                print(json.dumps(release_record(release, announcement.twins), ensure_ascii=False), file=out)
            else:
                artists = ", ".join(a.get("name") or "?" for a in release.artists)
                also = "".join(f" (also: {t.name})" for t in announcement.twins)
                print(
                    f"NEW {release.album_type:<11} {artists} — {release.name} "
                    f"({format_release_date(release.release_date, release.release_date_precision)}) "
                    f"https://open.spotify.com/album/{release.id}{also}",
                    file=out,
                )
        for failed in summary.failed_artists:
            print(f"could not check {failed.name}: {failed.reason} (checked again next pass)", file=err)
        print(
            f"checked {summary.artists_checked}/{summary.artists_due} artists, {summary.releases_found} new, "
            f"{summary.spotify_requests} Spotify requests",
            file=err,
        )
        if profile:
            for line in format_profile(summary.metrics):
                print(line, file=err)
            if as_json:
                print(json.dumps({"profile": summary.metrics}), file=err)
        return 1 if summary.failed_artists else 0
    finally:
        if coordinator is not None:
            await coordinator.stop()
        if own_session:
            await http.close()
        await db.close()
