"""The log of a whole ``release-bot run`` as a real process, at DEBUG, in each format (docs/operations.md, "Logs").

One process against the Discord fake, the Spotify emulator, the Last.fm emulator and a fake Sentry,
every secret distinctive: the Discord token, the Spotify client id and secret, the Last.fm API key,
the Sentry DSN, and on PostgreSQL a password in the database URL. Through the run: the channel is set, an artist followed (a silent baseline), a
``/refresh`` meets a Spotify 500 and a 401 (renewed token) and posts the new release, then
``/import lastfm:`` meets Last.fm refusing the key (an error the bot logs, reported to Sentry),
and SIGINT stops it. Then: no secret in the log file, its rotated backups or stderr; every line is
a JSON object (``json``) or a record line of the text format (``text``, tracebacks aside); the
run's records carry ``run_id``, the artist's check ``artist_id``, the delivery ``guild_id``, the
command's records ``guild_id`` and ``shard``; discord.py's and SQLAlchemy's records are there in
the same format; the fake Sentry got the error tagged ``release-bot@<version>``, without a secret.
A second process with a refused token (``text``) prints its one line and logs no token either.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
import sys
from collections import Counter

import pytest
from sqlalchemy.engine import make_url

from bot.ops.errors import release
from fakes.discord_fake import DiscordFake
from fakes.lastfm_emulator import LastFmEmulator
from fakes.sentry_fake import SentryFake
from fakes.spotify_emulator import SpotifyEmulator
from tests import backend
from tests.e2e.processes import BotProcess, posted_albums, process_config, until

pytestmark = pytest.mark.timeout(120)

TOKEN = "MTk5LogsTest.discord-bot-token.0123456789"
CLIENT_ID = "spotify-client-id-logs-0123456789"
CLIENT_SECRET = "spotify-client-secret-logs-0123456789"
LASTFM_KEY = "lastfm-api-key-logs-0123456789abcdef"
DSN_KEY = "feedfacefeedfacefeedfacefeedface"
DB_PASSWORD = "pg-password-logs-0123456789"
REFUSED_TOKEN = "MTk5Refused.discord-bot-token.9876543210"

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) (?P<logger>[\w.]+)"
    r"(?: \[(?P<context>[^\]]*)\])?: "
)


def records_of(text: str, fmt: str) -> list[dict]:
    """The records of a log as dicts (``logger``, ``message``, context fields); every line must be one
    (text: a record line, or a traceback's continuation after one)."""
    records: list[dict] = []
    for line in text.splitlines():
        if fmt == "json":
            records.append(json.loads(line))  # every line is a JSON object
            continue
        m = TEXT_LINE.match(line)
        if m is None:
            assert records, f"not a record line: {line}"
            records[-1].setdefault("continued", []).append(line)  # a traceback under its record
            continue
        fields = dict(kv.split("=", 1) for kv in (m["context"] or "").split() if "=" in kv)
        records.append({"level": m[1], "logger": m["logger"], "message": line[m.end() :], **fields})
    return records


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_a_whole_run_logs_no_secret_in_either_format(tmp_path, fmt):
    async with (
        DiscordFake(token=TOKEN) as fake,
        SpotifyEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as emu,
        LastFmEmulator(api_keys=("the-only-key-last-fm-accepts",)) as lastfm,
        SentryFake() as sentry,
    ):
        guild = fake.add_guild("Log Club")
        channel = fake.add_channel(guild, "new-music")
        admin = fake.add_member(guild, name="admin", manage_guild=True)
        artist = emu.add_artist("Nova Lights", followers=1000)
        emu.add_album([artist], "Back Catalogue", album_type="album", release_date="2024-01-05")
        lastfm.add_user("alice")
        dsn = sentry.dsn(DSN_KEY)
        db_url = backend.database_url(tmp_path, "logs")
        if (
            backend.backend() == "postgresql"
        ):  # the test server trusts local connections: the password is carried, unused
            db_url = make_url(db_url).set(password=DB_PASSWORD).render_as_string(hide_password=False)
        log_file = tmp_path / "logs" / "release-bot.log"
        config = tmp_path / "config.toml"
        config.write_text(
            process_config(
                fake,
                emu,
                db_url,
                scan_interval_seconds=3600,
                sections={
                    "logging": {
                        "format": fmt,
                        "level": "DEBUG",
                        "library_level": "DEBUG",
                        "file": str(log_file),
                        "max_bytes": 200_000,  # rotated a few times through the run (about 1 MB of DEBUG)
                        "backups": 20,
                    },
                    "lastfm": {"api_key": LASTFM_KEY, "api_base_url": lastfm.base_url.rstrip("/")},
                    "sentry": {"dsn": dsn, "environment": "e2e"},
                },
            )
        )
        bot = BotProcess(config, tmp_path, "process")  # stdout and stderr: tmp_path/process.log
        await bot.start()
        try:
            await fake.wait_for_ready(timeout=60)
            await until(lambda: any(c["name"] == "refresh" for c in fake.registered_commands), 30, "command sync")

            async def command(name, options=None, subcommand=None):
                handle = await fake.invoke(guild, admin, name, options or {}, subcommand=subcommand, channel_id=channel)
                await handle.wait_done(timeout=30)
                return handle

            await command("settings", {"channel": channel}, subcommand="channel")
            reply = await command("follow", {"artist": artist})
            assert "ollowing" in (reply.content or ""), reply.final
            new = emu.add_album([artist], "Fresh Single", album_type="single", release_date=dt.date.today().isoformat())
            emu.fail_next(status=500, path_contains="/albums")  # retried
            emu.fail_next(status=401, path_contains="/albums")  # the access token is renewed with the client secret
            await command("refresh")
            await until(lambda: posted_albums(fake, channel)[0][new] == 1, 30, "the new release posted")
            refused = await command("import", {"lastfm": "alice"})
            assert "refused this bot's API key" in str(refused.final), refused.final
        finally:
            code = await bot.stop()
        assert code == 0, bot.log()[-3000:]

    stderr = bot.log()
    # Oldest first: release-bot.log.N … release-bot.log.1, then release-bot.log.
    files = sorted(log_file.parent.iterdir(), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    assert files[-1] == log_file and len(files) >= 2, files  # rotated, as max_bytes says
    assert all(p.stat().st_size <= 200_000 for p in files)
    written = "".join(p.read_text(encoding="utf-8") for p in files)
    secrets = [
        TOKEN,
        CLIENT_ID,
        CLIENT_SECRET,
        LASTFM_KEY,
        dsn,
        DSN_KEY,
        base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode(),  # the token request's Basic auth
        *([DB_PASSWORD] if backend.backend() == "postgresql" else []),
    ]
    for secret in secrets:
        assert secret not in written, f"a secret is in the log file: {secret[:12]}…"
        assert secret not in stderr, f"a secret is on stderr: {secret[:12]}…"
    # discord.py's DEBUG lines show each interaction's URL and payload: its token (a credential for 15
    # minutes; the fake's all start with base64 "interaction:") is masked there.
    assert "aW50ZXJhY3Rpb246" not in written and "aW50ZXJhY3Rpb246" not in stderr
    assert re.search(r"/interactions/\d+/\*\*\*/callback", written)

    # stderr and the rotated files carry the same records, none lost, in the configured format.
    records = records_of(written, fmt)
    # (As multisets: aiosqlite logs from its own thread, so two threads' records may interleave differently.)
    assert Counter(r["message"] for r in records_of(stderr, fmt)) == Counter(r["message"] for r in records)
    loggers = {r["logger"] for r in records}
    assert any(name.startswith("discord.") for name in loggers), sorted(loggers)
    assert any(name.startswith("sqlalchemy.") for name in loggers), sorted(loggers)

    def field(record: dict, name: str) -> str | None:
        value = record.get(name)
        return None if value is None else str(value)

    run_records = [r for r in records if field(r, "run_id") is not None]
    finished = [r for r in run_records if r["logger"] == "bot.scheduling.runner" and "posted" in r["message"]]
    assert finished and "1 posted" in finished[-1]["message"], [r["message"] for r in run_records][-5:]
    assert any(field(r, "artist_id") == artist and r["logger"].startswith("bot.spotify") for r in run_records)
    assert any(field(r, "guild_id") == str(guild) and r["logger"].startswith("sqlalchemy") for r in run_records)
    assert {field(r, "shard") for r in records if field(r, "guild_id") == str(guild)} >= {"0"}
    lastfm_error = [r for r in records if r["level"] == "ERROR" and "Last.fm refused" in r["message"]]
    assert lastfm_error and field(lastfm_error[0], "guild_id") == str(guild)

    # The error reached "Sentry", tagged, without a secret (the DSN key only authenticates the request).
    events = sentry.events()
    messages = [e.get("logentry", {}).get("message") for e in events]
    assert messages.count("Last.fm refused the configured API key (invalid or suspended)") == 1, messages
    assert all(e["release"] == release() and e["environment"] == "e2e" for e in events)
    for request in sentry.requests:
        for secret in secrets:
            assert secret.encode() not in request.body
    print(
        f"\n{fmt}: {len(records)} records ({len(written) / 1e6:.1f} MB) in {len(files)} file(s); "
        f"{len(run_records)} with run_id; loggers: {len(loggers)}"
    )

    if fmt == "text":
        # A refused token: one line on stderr, and the token logged nowhere even at DEBUG.
        async with DiscordFake(token=TOKEN) as fake2, SpotifyEmulator() as emu2:
            refused_config = tmp_path / "refused.toml"
            text = process_config(fake2, emu2, backend.database_url(tmp_path, "refused"))
            text = text.replace(f'token = "{TOKEN}"', f'token = "{REFUSED_TOKEN}"')
            refused_log = tmp_path / "refused-logs" / "bot.log"
            refused_config.write_text(
                text + f'[logging]\nlevel = "DEBUG"\nlibrary_level = "DEBUG"\nfile = "{refused_log}"\n'
            )
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                "--config",
                str(refused_config),
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 2
        assert err.decode().strip().splitlines()[-1] == (
            "config error: discord.token: Discord refused the token (check DISCORD_TOKEN)"
        )
        for text in (out.decode(), err.decode(), refused_log.read_text()):
            assert REFUSED_TOKEN not in text
        assert "discord.http" in refused_log.read_text()  # discord.py's DEBUG requests were logged, masked
