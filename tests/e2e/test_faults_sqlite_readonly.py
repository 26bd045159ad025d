"""SQLite's database turned read-only under the running bot, and writable again.

A real read-only file system cannot be had under a live process: Linux refuses to remount a file
system (or a bind mount of it) read-only while a process holds a file on it open for writing
(``mount -o remount,ro`` fails with "mount point is busy"), and root writes through file modes.
So this runs the real ``ReleaseBot`` in-process against the fakes (:class:`fakes.stack.Stack`) and
makes SQLite itself refuse writes: every connection the bot's pool hands out gets
``PRAGMA query_only`` on or off, and SQLite then answers a write with the very error a read-only
database gives, ``SQLITE_READONLY`` "attempt to write a readonly database".

While read-only the bot must stay up, tell the member running ``/refresh`` and the log what is wrong,
and keep answering reads (``/status``); once writable again the weekly run goes on by itself and
posts every release once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

import pytest
from sqlalchemy import event

from tests import backend
from tests.e2e.processes import posted_albums

pytestmark = [
    pytest.mark.skipif(backend.backend() != "sqlite", reason="SQLite only: the database file's own permissions"),
    pytest.mark.timeout(120),
]

ARTISTS = 5
REFRESH_LINE = "command refresh failed: the database cannot be written: it is read-only"
SCAN_LINE = "due scan failed: the database cannot be written: it is read-only"


async def test_sqlite_read_only_told_clearly_process_stays_up_and_recovers(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    t0 = time.monotonic()
    stack = await backend.create_stack(tmp_path)
    sp = stack.spotify
    try:
        artists = [sp.add_artist(f"Artist {i}", followers=100 * (i + 1)) for i in range(ARTISTS)]
        for i, a in enumerate(artists):
            sp.add_album([a], f"Old {i}", album_type="album", release_date="2024-05-03")
        bot = await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        for a in artists:
            reply = await stack.command("follow", {"artist": a})
            assert "Now following" in (reply.content or ""), reply.final
        due = (await bot.services.runs.status(stack.guild_id)).next_due_at
        new = [
            sp.add_album([a], f"New {i}", album_type="single", release_date="2026-11-19") for i, a in enumerate(artists)
        ]

        read_only = {"on": True}

        def set_query_only(dbapi_connection, _record, _proxy) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA query_only = {int(read_only['on'])}")
            cursor.close()

        engine = bot.core.db.engine.sync_engine
        event.listen(engine, "checkout", set_query_only)
        try:
            # The weekly run falls due while the database is read-only.
            stack.clock.set(due)
            reply = await stack.command("refresh", timeout=20)
            assert "my database cannot be written (it is read-only)" in (reply.content or ""), reply.final
            assert "nothing is lost" in (reply.content or "")
            await stack.until(lambda: SCAN_LINE in caplog.text, timeout=10, what="the due scan's log line")
            assert REFRESH_LINE in caplog.text
            status = await stack.command("status")
            assert "Last run" in str(status.final), status.final
            assert posted_albums(stack.discord, stack.channel_id)[0] == Counter()
            scans_told = caplog.text.count(SCAN_LINE)

            # Writable again: the due scan runs the weekly run and posts every release, once.
            read_only["on"] = False
            t_back = time.monotonic()
            await stack.until(
                lambda: sum(posted_albums(stack.discord, stack.channel_id)[0].values()) >= ARTISTS,
                timeout=20,
                what="the weekly run once writable",
            )
            recovered_after = time.monotonic() - t_back

            async def recorded() -> bool:  # the weekly run ended: its guild's due time moved on
                return (await bot.services.runs.status(stack.guild_id)).next_due_at > due

            await stack.until(recorded, timeout=20, what="the weekly run recorded")
        finally:
            event.remove(engine, "checkout", set_query_only)
        reply = await stack.command("refresh")
        assert "no new releases" in (reply.content or ""), reply.final
        posted, other = posted_albums(stack.discord, stack.channel_id)
        assert posted == Counter(dict.fromkeys(new, 1)), posted
        assert other == 0
        assert (await bot.services.runs.status(stack.guild_id)).next_due_at > due
    finally:
        await stack.close()
    print(
        f"\nSQLite read-only: {scans_told} due scans told so in the log, /refresh told the member, "
        f"{ARTISTS} releases posted once {recovered_after:.2f} s after it was writable again; "
        f"{time.monotonic() - t0:.1f} s"
    )
