"""``release-bot check``: one tracking pass without Discord, on the bot's own database.

The first pass over an artist takes its silent baseline; each later pass prints the
releases first seen in it (``--json``: one object per line). The pass is recorded in
the run history (trigger ``check``); what it finds is not marked posted, so the
bot still announces it to the guilds that follow the artist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from typing import TextIO

import aiohttp
from sqlalchemy import select

from bot.config import Settings
from bot.delivery import Deliverer
from bot.delivery.render import format_release_date
from bot.runner import Runner
from bot.spotify.client import SpotifyClient, detect_spotify_kind, parse_spotify_id
from bot.tracking import Tracker
from storage import queries
from storage.db import open_database
from storage.models import Release


class _NoSender:
    """``check`` never posts; a Deliverer needs a sender all the same."""

    async def send(self, channel_id: int, embeds: list[dict], *, nonce: str) -> int:  # pragma: no cover
        raise RuntimeError("release-bot check does not post to Discord")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def release_record(release: Release) -> dict:
    """The ``--json`` line of a release: album id, url, artists (names), name, album type, release date."""
    return {
        "album_id": release.id,
        "url": f"https://open.spotify.com/album/{release.id}",
        "artists": [a.get("name") for a in release.artists],
        "name": release.name,
        "album_type": release.album_type,
        "release_date": release.release_date,
        "release_date_precision": release.release_date_precision,
    }


async def run_check(settings: Settings, artist_args: list[str], *, as_json: bool = False,
                    out: TextIO = sys.stdout, err: TextIO = sys.stderr, clock=_utcnow,
                    session: aiohttp.ClientSession | None = None, sleep=asyncio.sleep) -> int:
    """Run one pass; returns the exit status (0 ok, 1 some artist could not be checked, 2 bad input).

    ``clock`` (aware UTC now) and ``sleep`` (the Spotify client's waits, seconds) are injectable for tests.
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
    db = await open_database(settings.database_url)
    own_session = session is None
    http = session or aiohttp.ClientSession()
    try:
        spotify = SpotifyClient(client_id=settings.spotify.client_id, client_secret=settings.spotify.client_secret,
                                api_base_url=settings.spotify.api_base_url,
                                accounts_base_url=settings.spotify.accounts_base_url,
                                market=settings.spotify.market, session=http, clock=clock, sleep=sleep)
        tracker = Tracker(db, spotify, clock=clock)
        runner = Runner(db, tracker, Deliverer(db, _NoSender(), clock=clock), clock=clock)
        if not ids:
            async with db.sessions() as s:
                ids = await queries.followed_artist_ids(s)
            if not ids:
                print("check: no artists: pass --artist ID, or follow some from Discord first", file=err)
                return 2
        summary = await runner.run("check", artist_ids=ids)
        async with db.sessions() as s:
            names = await queries.artist_names(s, ids)
            releases = {r.id: r for r in await s.scalars(select(Release).where(Release.id.in_(summary.new_release_ids)))}
        for artist_id in summary.baselined:
            print(f"baseline: {names.get(artist_id, artist_id)} — what is already out is recorded, not new", file=err)
        for release_id in summary.new_release_ids:
            release = releases[release_id]
            if as_json:
                print(json.dumps(release_record(release), ensure_ascii=False), file=out)
            else:
                artists = ", ".join(a.get("name") or "?" for a in release.artists)
                print(f"NEW {release.album_type:<11} {artists} — {release.name} "
                      f"({format_release_date(release.release_date, release.release_date_precision)}) "
                      f"https://open.spotify.com/album/{release.id}", file=out)
        for failed in summary.failed_artists:
            print(f"could not check {failed.name}: {failed.reason} (checked again next pass)", file=err)
        print(f"checked {summary.artists_checked}/{summary.artists_due} artists, {summary.releases_found} new, "
              f"{summary.spotify_requests} Spotify requests", file=err)
        return 1 if summary.failed_artists else 0
    finally:
        if own_session:
            await http.close()
        await db.close()
