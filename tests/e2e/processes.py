"""Helpers of the end-to-end tests that run ``release-bot run`` as real processes (docs/multiprocess.md, "Proof").

``BotProcess`` (one ``python -m bot run`` with its log in a file), ``until`` (a bounded
poll), ``process_config`` (a config for one process of several: shards, coordination,
budget), ``seed_world`` (guilds, channels and follows written straight into the store and
the fake, instead of hundreds of slash commands) and ``posted_albums`` (what a channel got).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import insert

from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from fakes.stack import config_toml, wait_for
from storage.db import Database
from storage.models import Artist, Follow, Guild

ALBUM_RE = re.compile(r"https://open\.spotify\.com/album/([0-9A-Za-z]{22})")
#: what must never appear in a bot process's log
LOG_ALARMS = ("IntegrityError", "deadlock", "Traceback")


class BotProcess:
    """``python -m bot run --config <config>`` with its log in ``workdir/<name>.log`` (no pipe to fill).

    ``pid`` is the running process's id; ``owner_pid`` matches it against ``processes.id`` /
    the owner columns (``host:pid:random``).
    """

    def __init__(self, config: Path, workdir: Path, name: str) -> None:
        self.config, self.workdir, self.name = config, workdir, name
        self.log_path = workdir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self._log: BinaryIO | None = None

    async def start(self) -> None:
        """Start the process (its output appended to the log file)."""
        # Open while the process runs (closed by kill/stop); a blocking open of a local file is brief.
        self._log = open(self.log_path, "ab")  # noqa: SIM115, ASYNC230
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(self.config),
            cwd=self.workdir,
            stdout=self._log,
            stderr=self._log,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )

    @property
    def pid(self) -> int | None:
        """The pid of the process while it runs, else None."""
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.pid is not None

    async def kill(self) -> None:
        """SIGKILL the process and reap it."""
        assert self.proc is not None and self._log is not None, "not started"
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self._log.close()

    async def stop(self, timeout: float = 30) -> int:
        """SIGINT (a clean shutdown) and wait for the exit status (bounded by ``timeout`` s)."""
        assert self.proc is not None and self._log is not None, "not started"
        self.proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        self._log.close()
        return code

    async def terminate(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM (``docker stop``) and wait for the exit: ``(exit status, seconds from the signal to the
        exit)`` (bounded by ``timeout`` s)."""
        return await self._signal(signal.SIGTERM, timeout)

    async def interrupt(self, timeout: float = 30) -> tuple[int, float]:
        """SIGINT (Ctrl-C) and wait for the exit: ``(exit status, seconds from the signal to the exit)``."""
        return await self._signal(signal.SIGINT, timeout)

    async def _signal(self, sig: signal.Signals, timeout: float) -> tuple[int, float]:
        assert self.proc is not None and self._log is not None, "not started"
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        elapsed = time.monotonic() - t0
        self._log.close()
        return code, elapsed

    def log(self) -> str:
        """The whole log so far (every start of this process appends to it)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def owner_pid(owner: str | None) -> int | None:
    """The pid in an owner id ``host:pid:random`` (None for None)."""
    return None if owner is None else int(owner.rsplit(":", 2)[1])


async def until(predicate, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` (sync, or async returning a value) until truthy; returns its value.
    Raises ``TimeoutError`` naming ``what`` after ``timeout`` seconds (``fakes.stack.wait_for``)."""
    return await wait_for(predicate, timeout=timeout, interval=interval, what=what)


def process_config(
    fake: DiscordFake,
    emu: SpotifyEmulator,
    db_url: str,
    *,
    shard_count: int | None = None,
    shard_ids: Sequence[int] | None = None,
    scan_interval_seconds: float = 1,
    sections: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """``fakes.stack.config_toml`` for one of several processes: its shards (``[discord]``) and extra
    keys per section (``sections``, e.g. ``{"coordination": {"heartbeat_seconds": 1}}``; values
    rendered with ``repr``-like TOML: numbers, booleans, strings)."""
    text = config_toml(fake, emu, db_url, scan_interval_seconds=scan_interval_seconds)
    extra: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (sections or {}).items()}
    if shard_count is not None:
        extra.setdefault("discord", {}).update(shard_count=shard_count, shard_ids=list(shard_ids or []))

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    for section, keys in extra.items():
        lines = "".join(f"{k} = {value(v)}\n" for k, v in keys.items())
        header = f"[{section}]\n"
        text = text.replace(header, header + lines, 1) if header in text else text + header + lines
    return text


def shard_configs(
    tmp_path: Path,
    fake: DiscordFake,
    emu: SpotifyEmulator,
    db_url: str,
    *,
    lease_seconds: float,
    heartbeat_seconds: float = 1,
    scan_interval_seconds: float = 1,
) -> list[Path]:
    """Config files ``tmp_path/config-0.toml`` and ``config-1.toml`` for two processes on one database, one
    Discord shard of two each, with a ``heartbeat_seconds`` heartbeat and ``lease_seconds`` leases
    (:func:`process_config`); returns their paths, shard 0's first."""
    paths = []
    for shard in (0, 1):
        path = tmp_path / f"config-{shard}.toml"
        path.write_text(
            process_config(
                fake,
                emu,
                db_url,
                shard_count=2,
                shard_ids=[shard],
                scan_interval_seconds=scan_interval_seconds,
                sections={"coordination": {"heartbeat_seconds": heartbeat_seconds, "lease_seconds": lease_seconds}},
            )
        )
        paths.append(path)
    return paths


async def seed_world(
    db: Database,
    fake: DiscordFake,
    follows: Mapping[int, Iterable[str]],
    names: Mapping[str, str],
    *,
    shard_count: int,
    now: dt.datetime,
) -> dict[int, int]:
    """Create one guild per key of ``follows`` (``follows[i]``: the artist ids guild *i* follows) in
    the fake and in the store, fast: guild *i* is on shard ``i % shard_count``, has a text channel
    ``new-music`` the bot may post in (its release channel) and follows its artists since ``now``.

    The store rows are inserted in bulk (not through slash commands); no baseline is taken.
    ``names``: artist id → name. The guilds are not due (``next_due_at`` a year ahead).
    Returns guild id → channel id, in the order of ``follows``.
    """
    channels: dict[int, int] = {}
    order: list[tuple[int, int]] = []
    for i in follows:
        gid = fake.add_guild(f"Guild {i}", guild_id=fake.snowflake_on_shard(i % shard_count, shard_count))
        channels[gid] = fake.add_channel(gid, "new-music")
        order.append((i, gid))
    later = now + dt.timedelta(days=365)
    followed = sorted({a for i in follows for a in follows[i]})
    async with db.sessions() as session:
        await session.execute(
            insert(Guild),
            [
                {
                    "id": gid,
                    "channel_id": channels[gid],
                    "schedule_day": 4,
                    "schedule_time": "12:00",
                    "timezone": "UTC",
                    "next_due_at": later,
                    "created_at": now,
                    "album_groups": ["album", "single", "compilation"],
                    "filters": {},
                }
                for _i, gid in order
            ],
        )
        await session.execute(
            insert(Artist), [{"id": a, "name": names[a], "group_state": {}, "runs_skipped": 0} for a in followed]
        )
        await session.execute(
            insert(Follow),
            [
                {"guild_id": gid, "artist_id": a, "followed_at": now}
                for i, gid in order
                for a in dict.fromkeys(follows[i])
            ],
        )
        await session.commit()
    return channels


def posted_albums(fake: DiscordFake, channel_id: int) -> tuple[Counter, int]:
    """``(album id → times posted, messages without a release link)`` of one channel."""
    posted: Counter = Counter()
    other = 0
    for message in fake.channel_messages(channel_id):
        found = [m.group(1) for e in message.get("embeds") or [] if (m := ALBUM_RE.fullmatch(e.get("url") or ""))]
        posted.update(found)
        other += not found
    return posted, other


def log_alarms(text: str) -> list[str]:
    """The lines of a process log naming an ``IntegrityError``, a deadlock or a traceback."""
    return [line for line in text.splitlines() if any(a.lower() in line.lower() for a in LOG_ALARMS)]
