"""The whole bot on loopback: Spotify emulator + Discord fake + the real ``ReleaseBot``.

Used by the end-to-end tests and by ``release-bot demo``. The bot is the unmodified
discord.py client, pointed at the fake through the two Discord URLs of its config,
and its Spotify client is pointed at the emulator through the Spotify base URLs. With
``music=True`` the Last.fm, ListenBrainz and MusicBrainz emulators run too, and the bot is
configured for them (a Last.fm key and a MusicBrainz contact; the daily signal stays off unless
``Stack.musicdata`` is set before the bot starts).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord

from bot.discord_app.client import ReleaseBot
from bot.settings import (
    DatabaseSettings,
    DeliverySettings,
    DiscordSettings,
    DueScanSettings,
    HttpSettings,
    LastFmSettings,
    MusicBrainzSettings,
    ReleaseDaySettings,
    ScheduleSettings,
    Settings,
    SpotifySettings,
)
from fakes.discord_fake import DiscordFake
from fakes.lastfm_emulator import LastFmEmulator
from fakes.listenbrainz_emulator import ListenBrainzEmulator
from fakes.musicbrainz_emulator import MusicBrainzEmulator
from fakes.spotify_emulator import SpotifyEmulator

LASTFM_API_KEY = "stack-lastfm-key"
MUSICBRAINZ_CONTACT = "stack@example.org"


class SimClock:
    """An injectable, settable UTC clock (``clock()`` → aware UTC datetime)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> dt.datetime:
        """Move the clock forward by ``datetime.timedelta(**kwargs)``; returns the new now."""
        self.now += dt.timedelta(**kwargs)
        return self.now

    def set(self, when: dt.datetime) -> None:
        """Jump to ``when`` (aware)."""
        self.now = when


async def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"
) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; return its value. Raises ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def config_toml(
    fake: DiscordFake,
    emu: SpotifyEmulator,
    db_path: Path | str,
    *,
    token: str | None = None,
    scan_interval_seconds: float = 5,
) -> str:
    """A ``config.toml`` for ``release-bot run`` as a process against the two fakes.

    ``db_path`` is a SQLite file, or a SQLAlchemy URL (a ``str`` containing ``://``, e.g. the
    test backend's ``tests.backend.database_url``). ``token`` defaults to the fake's; client
    pacing is off (the emulator here has no rate limit; pacing is tested in ``tests/bot/spotify``).
    """
    url = db_path if isinstance(db_path, str) and "://" in db_path else f"sqlite+aiosqlite:///{db_path}"
    return f"""
[discord]
token = "{fake.token if token is None else token}"
api_base_url = "{fake.api_base_url}"
gateway_url = "{fake.gateway_url}"
[spotify]
client_id = "{emu.client_id}"
client_secret = "{emu.client_secret}"
api_base_url = "{emu.api_base_url}"
accounts_base_url = "{emu.accounts_base_url}"
rate_limit_per_30s = 0
[database]
url = "{url}"
[due_scan]
interval_seconds = {scan_interval_seconds}
"""


@dataclass
class Stack:
    """A running stack. ``guild_id``/``channel_id``/``admin_id``/``member_id`` are the fake's world.

    ``delivery``: the bot's ``[delivery]`` settings (DM pacing, the crosspost/DM retry poll), read at
    each :meth:`start_bot`; tests set it before starting the bot. ``musicdata``: ``[musicbrainz] enabled``
    (the daily signal, announced releases and release-day probing; needs ``music=True``); ``release_day``: the
    ``[release_day]`` settings (None: the defaults, scanning every ``scan_interval_seconds``); ``http``: the
    ``[http]`` settings (off by default; ``HttpSettings(port=0)`` serves /metrics on a free port). All are
    read at each :meth:`start_bot` too, as is ``spotify_sleep``: the bot's Spotify (and music-data)
    clients' waits between retries (None: ``asyncio.sleep``), e.g. one that advances :attr:`clock`.
    """

    spotify: SpotifyEmulator
    discord: DiscordFake
    clock: SimClock
    database_url: str
    scan_interval_seconds: float
    guild_id: int
    channel_id: int
    admin_id: int
    member_id: int
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    musicdata: bool = False
    release_day: ReleaseDaySettings | None = None
    http: HttpSettings = field(default_factory=HttpSettings)
    spotify_sleep: Callable[[float], Awaitable[object]] | None = None
    lastfm: LastFmEmulator | None = None
    listenbrainz: ListenBrainzEmulator | None = None
    musicbrainz: MusicBrainzEmulator | None = None
    bot: ReleaseBot | None = None
    _task: asyncio.Task | None = field(default=None, repr=False)

    @classmethod
    async def create(
        cls,
        data_dir: Path,
        *,
        clock: SimClock | None = None,
        scan_interval_seconds: float = 0.1,
        spotify_latency: float = 0.0,
        database_url: str | None = None,
        music: bool = False,
    ) -> Stack:
        """Start both fakes and build a guild with one text channel, an admin and a plain member.

        The bot's database is ``database_url`` (tests pass their backend's,
        ``tests.backend.database_url``), by default a SQLite file in ``data_dir``. ``music``: also
        start the Last.fm (key :data:`LASTFM_API_KEY`), ListenBrainz and MusicBrainz emulators (the
        latter without its per-second limit: the bot's own pacing runs on the stack's clock).
        """
        spotify = SpotifyEmulator(latency=spotify_latency)
        await spotify.start()
        fake = DiscordFake()
        await fake.start()
        guild_id = fake.add_guild("Music Club")
        channel_id = fake.add_channel(guild_id, "new-music")
        admin_id = fake.add_member(guild_id, name="admin", manage_guild=True)
        member_id = fake.add_member(guild_id, name="listener")
        clock = clock or SimClock(dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC))  # a Monday
        lastfm = listenbrainz = musicbrainz = None
        if music:
            lastfm = LastFmEmulator(api_keys=[LASTFM_API_KEY], clock=clock)
            listenbrainz = ListenBrainzEmulator(clock=clock)
            musicbrainz = MusicBrainzEmulator(clock=clock, rate_limit=None)
            for emulator in (lastfm, listenbrainz, musicbrainz):
                await emulator.start()
        return cls(
            spotify=spotify,
            discord=fake,
            clock=clock,
            database_url=database_url or f"sqlite+aiosqlite:///{data_dir / 'release-bot.db'}",
            scan_interval_seconds=scan_interval_seconds,
            guild_id=guild_id,
            channel_id=channel_id,
            admin_id=admin_id,
            member_id=member_id,
            lastfm=lastfm,
            listenbrainz=listenbrainz,
            musicbrainz=musicbrainz,
        )

    def settings(self) -> Settings:
        """Config pointing the bot at the two fakes."""
        return Settings(
            discord=DiscordSettings(
                token=self.discord.token, api_base_url=self.discord.api_base_url, gateway_url=self.discord.gateway_url
            ),
            spotify=SpotifySettings(
                client_id=self.spotify.client_id,
                client_secret=self.spotify.client_secret,
                api_base_url=self.spotify.api_base_url,
                accounts_base_url=self.spotify.accounts_base_url,
                rate_limit_per_30s=0,
            ),  # the emulator here has no rate limit
            database=DatabaseSettings(url=self.database_url),
            # Unvalidated: the stack scans more often (0.1 s) than the 1 s a config file may ask for.
            due_scan=DueScanSettings.model_construct(interval_seconds=self.scan_interval_seconds),
            default_schedule=ScheduleSettings(day=4, time="12:00", timezone="UTC"),
            delivery=self.delivery,
            musicbrainz=MusicBrainzSettings(
                enabled=self.musicdata,
                contact=MUSICBRAINZ_CONTACT,
                api_base_url=self.musicbrainz.base_url,
                listenbrainz_api_base_url=self.listenbrainz.base_url,
            )
            if self.musicbrainz is not None and self.listenbrainz is not None
            else MusicBrainzSettings(),
            lastfm=LastFmSettings(api_key=LASTFM_API_KEY, api_base_url=self.lastfm.base_url)
            if self.lastfm is not None
            else LastFmSettings(),
            http=self.http,
            # Unvalidated like the due scan: the release-day scan looks as often as the due scan.
            release_day=self.release_day
            or ReleaseDaySettings.model_construct(
                **{**ReleaseDaySettings().model_dump(), "interval_seconds": self.scan_interval_seconds}
            ),
        )

    async def start_bot(self, timeout: float = 15.0) -> ReleaseBot:
        """Start a fresh ``ReleaseBot`` process-equivalent on the same database; wait until ready."""
        bot = ReleaseBot(self.settings(), clock=self.clock, sleep=self.spotify_sleep)
        self.bot = bot
        task = self._task = asyncio.create_task(bot.start(self.discord.token), name="release-bot")
        try:
            await wait_for(lambda: bot.is_ready() or task.done(), timeout=timeout, what="bot ready")
        except TimeoutError:
            await self.stop_bot()
            raise
        if task.done():
            task.result()  # re-raise the start-up failure
        return bot

    async def stop_bot(self) -> None:
        """Close the bot (as at shutdown) and wait for its task."""
        if self.bot is not None:
            await self.bot.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 10)
            except (asyncio.CancelledError, discord.ConnectionClosed):
                pass
        self.bot, self._task = None, None

    async def restart_bot(self) -> ReleaseBot:
        """Stop and start the bot again on the same database (a process restart)."""
        await self.stop_bot()
        return await self.start_bot()

    async def close(self) -> None:
        """Stop the bot and both fakes."""
        await self.stop_bot()
        await self.discord.stop()
        await self.spotify.stop()
        for emulator in (self.lastfm, self.listenbrainz, self.musicbrainz):
            if emulator is not None:
                await emulator.stop()

    # --- acting as a user -------------------------------------------------------------

    async def command(
        self,
        name: str,
        options: dict | None = None,
        *,
        subcommand: str | None = None,
        user_id: int | None = None,
        timeout: float = 15.0,
    ):
        """Invoke a slash command as the admin (or ``user_id``) and wait for its final reply."""
        handle = await self.discord.invoke(
            self.guild_id,
            user_id or self.admin_id,
            name,
            options or {},
            subcommand=subcommand,
            channel_id=self.channel_id,
        )
        await handle.wait_done(timeout=timeout)
        return handle

    def posted(self) -> list[dict]:
        """Messages the bot posted in the release channel, oldest first."""
        return self.discord.channel_messages(self.channel_id)

    def posted_titles(self) -> list[str]:
        """Titles of every release embed posted in the release channel, in order."""
        return [e.get("title") for m in self.posted() for e in m.get("embeds") or []]

    async def until(
        self,
        predicate: Callable[[], Any] | Callable[[], Awaitable[Any]],
        *,
        timeout: float = 10.0,
        what: str = "condition",
    ) -> Any:
        """:func:`wait_for` bound to this stack."""
        return await wait_for(predicate, timeout=timeout, what=what)
