"""``release-bot signal``: the free signal's counts from the store — artists mapped, release groups kept,
matched, missed — as text or JSON, without a request."""

from __future__ import annotations

import datetime as dt
import io
import json

from bot.cli import main
from bot.cli.signal import run_signal
from bot.settings import DatabaseSettings, MusicBrainzSettings, Settings
from storage import musicdata
from storage.db import open_database
from storage.musicdata import ReleaseGroupRow
from tests import backend
from tests.bot.helpers import add_guild, follow
from tests.conftest import FakeClock


def row(n: int, date: dt.date) -> ReleaseGroupRow:
    mbid = f"00000000-0000-4000-8000-0000000000{n:02d}"
    return ReleaseGroupRow(mbid, f"Group {n}", "A", (), "Album", (), date, mbid, None, None, ("artA",))


async def seeded(url: str, clock: FakeClock) -> None:
    db = await open_database(url)
    try:
        await add_guild(db, 1, now=clock())
        await follow(db, 1, "artA", now=clock())
        await follow(db, 1, "artB", now=clock())
        today = clock().date()
        async with db.transaction() as session:
            await musicdata.record_mappings(
                session, {"artA": ("m",), "artB": ()}, now=clock(), retry_after=lambda _n: dt.timedelta(days=7)
            )
            rows = [row(1, today + dt.timedelta(days=3)), row(2, today - dt.timedelta(days=20))]
            await musicdata.store_release_groups(
                session, rows, listed={r.mbid for r in rows}, window=(today, today), now=clock()
            )
            await musicdata.record_misses(session, dated_before=today - dt.timedelta(days=14), now=clock())
            await musicdata.record_daily_fetch(session, today.isoformat())
    finally:
        await db.close()


async def test_the_counts_are_printed_as_text_and_as_json(tmp_path, clock):
    url = backend.database_url(tmp_path, "signal")
    await seeded(url, clock)
    settings = Settings(
        database=DatabaseSettings(url=url), musicbrainz=MusicBrainzSettings(enabled=True, contact="a@b.org")
    )
    out = io.StringIO()
    assert await run_signal(settings, out=out, clock=clock) == 0
    assert out.getvalue().splitlines() == [
        "free second signal: enabled; last daily fetch 2026-11-20",
        "  artists         2 followed: 1 mapped to MusicBrainz, 1 not found there (tried again later), 0 not tried yet",
        "  release groups  2 kept: 1 upcoming, 0 matched, 1 missed, 0 gone from ListenBrainz; 0 with a date change",
        "  matched         0 by barcode, 0 by title and date; 0 listed before their date, 0 on Spotify only after it",
        "  missed          no Spotify release 14 days after the date: 1",
    ]
    out = io.StringIO()
    assert await run_signal(settings, as_json=True, out=out, clock=clock) == 0
    counts = json.loads(out.getvalue())
    assert counts["artists_mapped"] == 1 and counts["missed"] == 1 and counts["upcoming"] == 1
    assert counts["last_daily_fetch"] == "2026-11-20"


def test_the_command_line_reads_the_configured_store(tmp_path, capsys):
    url = backend.database_url(tmp_path, "cli")
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    assert main(["signal", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "free second signal: not enabled ([musicbrainz] enabled = false); last daily fetch never"
    assert lines[1].startswith("  artists         0 followed")
