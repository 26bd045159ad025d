"""``release-bot signal``: how the free second signal is doing (docs/musicdata.md, "Quality").

Reads the store only (no request): the followed artists mapped to MusicBrainz, the release groups
kept from ListenBrainz's fresh releases, and how they matched the Spotify releases — matched (by
barcode, by title and date), announced ahead, late on Spotify, missed, gone, postponed. ``--json``
prints the same counts as one JSON object.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import TextIO

from bot.clock import Clock, utcnow
from bot.musicdata.signal import MISS_AFTER_DAYS
from bot.settings import Settings
from bot.wiring import open_store
from storage import musicdata
from storage.musicdata import SignalCounts


def format_counts(counts: SignalCounts, *, enabled: bool, last_fetch: str | None) -> list[str]:
    """The counts as readable lines (the text output of ``release-bot signal``)."""
    c = counts
    state = "enabled" if enabled else "not enabled ([musicbrainz] enabled = false)"
    lines = [f"free second signal: {state}; last daily fetch {last_fetch or 'never'}"]
    lines.append(
        f"  artists         {c.artists_followed} followed: {c.artists_mapped} mapped to MusicBrainz, "
        f"{c.artists_unmapped} not found there (tried again later), {c.artists_untried} not tried yet"
    )
    lines.append(
        f"  release groups  {c.release_groups} kept: {c.upcoming} upcoming, {c.matched} matched, "
        f"{c.missed} missed, {c.gone} gone from ListenBrainz; {c.postponed} with a date change"
    )
    lines.append(
        f"  matched         {c.matched_by_upc} by barcode, {c.matched_by_title} by title and date; "
        f"{c.announced_ahead} listed before their date, {c.late} on Spotify only after it"
    )
    lines.append(f"  missed          no Spotify release {MISS_AFTER_DAYS} days after the date: {c.missed}")
    return lines


async def run_signal(
    settings: Settings, *, as_json: bool = False, out: TextIO | None = None, clock: Clock = utcnow
) -> int:
    """Print the counts of the store ``settings`` names to ``out`` (None: standard output); ``clock``: aware
    UTC now ("today"). Returns 0."""
    out = sys.stdout if out is None else out
    db = await open_store(settings)
    try:
        async with db.transaction() as session:
            counts = await musicdata.signal_counts(session, today=clock().date())
            last_fetch = await musicdata.daily_fetch_day(session)
    finally:
        await db.close()
    if as_json:
        print(json.dumps({**dataclasses.asdict(counts), "last_daily_fetch": last_fetch}), file=out)
    else:
        for line in format_counts(counts, enabled=settings.musicbrainz.enabled, last_fetch=last_fetch):
            print(line, file=out)
    return 0
