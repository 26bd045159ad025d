"""The one place the bot's object graph is built: :func:`build_core` turns :class:`Settings` into a
:class:`Core` — the store, this process's coordinator, the HTTP session, the Spotify client with its
hooks, the tracker, the labeler, the deliverer (with its crosspost publisher and DM outbox), the
runner and the command services, and the free second signal's daily job when ``[musicbrainz] enabled``
(:func:`music_signal`) — on the MusicBrainz and ListenBrainz clients built whenever ``[musicbrainz]
contact`` is set (:func:`music_clients`), which ``/import`` also maps listening histories with, beside
the Last.fm client of ``[lastfm] api_key`` (:func:`listening_history`).

Every process takes this path: ``release-bot run`` (``ReleaseBot.setup_hook``, with a
:class:`bot.discord_app.sender.DiscordSender`), ``release-bot check`` (no sender: it tracks only),
``release-bot demo`` (the real ``ReleaseBot`` against the fakes), ``release-bot migrate`` (the store
only: :func:`open_store`) and the benchmarks. What tests and benchmarks inject — a clock, an aiohttp
session, the Spotify client's ``sleep``, the sender, the owner name, the tracker's concurrency —
are keyword parameters of :func:`build_core`; everything else comes from the settings.

With ``metrics`` (a :class:`bot.ops.metrics.Metrics`, when ``[http] port`` is set) the components also
feed the process's Prometheus metrics through their hooks (:func:`bot.ops.metrics.instrument`).

The Spotify client's hooks (docs/multiprocess.md, "One quota"): a quota cooldown is written to the
store as the 429 arrives (:func:`persist_cooldown`), and at each heartbeat the client adopts a
cooldown another process stored and takes its share of the rate limit (:func:`share_spotify_state`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from bot.clock import Clock, utcnow
from bot.coordination.coordinator import Coordinator
from bot.delivery.deliverer import Deliverer, Sender
from bot.delivery.dm_outbox import DmOutbox
from bot.delivery.publisher import Publisher
from bot.delivery.upcoming import Announcer
from bot.musicdata import (
    LastFmClient,
    ListenBrainzClient,
    MusicBrainzClient,
    MusicSignal,
    SharedRateLimit,
    user_agent,
)
from bot.ops.metrics import Metrics, instrument
from bot.scheduling.release_day import ReleaseDayProber
from bot.scheduling.runner import Runner
from bot.services import DefaultSchedule, Services
from bot.services.import_history import ListeningHistory
from bot.settings import LastFmSettings, MusicBrainzSettings, Settings, SpotifySettings
from bot.spotify.client import SpotifyClient
from bot.spotify.errors import SpotifyCooldown
from bot.tracking.labels import Labeler
from bot.tracking.tracker import Tracker
from storage import spotify_state
from storage.db import Database, open_database

Sleep = Callable[[float], Awaitable[object]]
"""``await sleep(seconds)``: the Spotify client's waits (``asyncio.sleep``; tests inject a no-op)."""


async def open_store(settings: Settings, *, migrate: bool = True) -> Database:
    """Open the configured database (``[database]``: URL and engine options), migrated to head unless
    ``migrate`` is False. Errors as ``storage.db.open_database``."""
    return await open_database(settings.database_url, migrate=migrate, **settings.database.engine_options())


def spotify_client(
    spotify: SpotifySettings,
    *,
    session: aiohttp.ClientSession | None = None,
    clock: Clock = utcnow,
    sleep: Sleep = asyncio.sleep,
) -> SpotifyClient:
    """A :class:`SpotifyClient` configured from ``[spotify]`` (credentials, endpoints, market, pacing),
    without the hooks :func:`build_core` adds. ``session``: as ``SpotifyClient`` (None: its own)."""
    return SpotifyClient(
        client_id=spotify.client_id.get_secret_value(),
        client_secret=spotify.client_secret.get_secret_value(),
        api_base_url=spotify.api_base_url,
        accounts_base_url=spotify.accounts_base_url,
        market=spotify.market,
        session=session,
        clock=clock,
        sleep=sleep,
        rate_limit_per_30s=spotify.rate_limit_per_30s,
    )


async def persist_cooldown(db: Database, cooldown: SpotifyCooldown) -> None:
    """The Spotify client's ``on_cooldown``: write the cooldown to ``spotify_state`` as the 429 arrives,
    so every process sharing the developer account's quota stops too (a later one is never shortened)."""
    async with db.transaction() as session:
        await spotify_state.set_cooldown(session, cooldown.until, cooldown.reason)


async def share_spotify_state(db: Database, spotify: SpotifyClient, coordinator: Coordinator) -> None:
    """At each heartbeat: adopt a cooldown another process stored (until it passes, by the coordinator's
    clock), and split the rolling-window rate limit between the live processes (one developer
    account's limit, however many processes)."""
    async with db.transaction() as session:
        until, _reason = await spotify_state.get_cooldown(session)
    if (
        until is not None
        and until > coordinator.clock()
        and (spotify.cooldown_until is None or spotify.cooldown_until < until)
    ):
        spotify.cooldown_until = until
    spotify.share_rate_limit(len(await coordinator.live_owners()))


@dataclass(frozen=True)
class MusicClients:
    """The MusicBrainz client (paced by the request slot every process shares: one a second) and the
    ListenBrainz client, both sending ``release-bot/<version> ( <contact> )``."""

    musicbrainz: MusicBrainzClient
    listenbrainz: ListenBrainzClient


def music_clients(
    musicbrainz: MusicBrainzSettings, db: Database, *, session: aiohttp.ClientSession, clock: Clock, sleep: Sleep
) -> MusicClients | None:
    """The MusicBrainz and ListenBrainz clients from ``[musicbrainz]``, or None without a ``contact``
    (both services refuse anonymous clients), on ``session``."""
    if not musicbrainz.contact:
        return None
    agent = user_agent(musicbrainz.contact)
    pacing = SharedRateLimit(db, "musicbrainz", interval_seconds=1.0, clock=clock, sleep=sleep)
    return MusicClients(
        MusicBrainzClient(base_url=musicbrainz.api_base_url, user_agent=agent, http=session, rate_limit=pacing),
        ListenBrainzClient(
            base_url=musicbrainz.listenbrainz_api_base_url, user_agent=agent, http=session, clock=clock, sleep=sleep
        ),
    )


def music_signal(
    musicbrainz: MusicBrainzSettings,
    db: Database,
    coordinator: Coordinator,
    clients: MusicClients | None,
    *,
    clock: Clock,
) -> MusicSignal | None:
    """The free second signal's daily job from ``[musicbrainz]`` (docs/musicdata.md) on ``clients``, or
    None when it is not enabled (``enabled`` requires the contact, so ``clients`` exist then)."""
    if not musicbrainz.enabled or clients is None:
        return None
    return MusicSignal(
        db,
        coordinator,
        clients.musicbrainz,
        clients.listenbrainz,
        clock=clock,
        lookahead_days=musicbrainz.lookahead_days,
    )


def listening_history(
    lastfm: LastFmSettings,
    contact: str,
    clients: MusicClients | None,
    *,
    session: aiohttp.ClientSession,
    sleep: Sleep,
) -> ListeningHistory:
    """The clients of ``/import lastfm:`` and ``listenbrainz:``: Last.fm when ``[lastfm] api_key`` is
    set (User-Agent ``release-bot/<version>`` with the contact when there is one), ListenBrainz and
    MusicBrainz when ``[musicbrainz] contact`` is (``clients``)."""
    return ListeningHistory(
        lastfm=LastFmClient(
            base_url=lastfm.api_base_url,
            api_key=lastfm.api_key.get_secret_value(),
            user_agent=user_agent(contact),
            http=session,
            sleep=sleep,
        )
        if lastfm.api_key.get_secret_value()
        else None,
        listenbrainz=clients.listenbrainz if clients is not None else None,
        musicbrainz=clients.musicbrainz if clients is not None else None,
    )


@dataclass
class Core:
    """One process's object graph (built by :func:`build_core`); ``await close()`` (or ``async with``)
    closes what it opened, in reverse order: the Spotify client, the HTTP session (unless injected),
    the coordinator (giving up its leases) and the store.

    ``clock`` is the coordinator's (aware UTC now; the database's clock unless one was injected):
    every component shares it. ``deliverer`` is None in a process that posts nothing (``check``),
    and so are ``publisher`` (crossposts deferred by Discord's limit, retried in the background) and
    ``dm_outbox`` (the paced DMs); their background loops are run by ``cogs/outbox.py``.
    ``musicdata`` is the free second signal's daily job, None unless ``[musicbrainz] enabled``;
    ``release_day`` the release-day prober, None unless that too and a deliverer.
    ``announcer`` posts the announced releases it finds (``/settings upcoming``), None unless it is enabled
    and the process posts (both run by ``cogs/musicdata.py``).
    ``metrics``: the Prometheus metrics the components feed (docs/operations.md), None when ``[http]`` is off.
    """

    settings: Settings
    db: Database
    coordinator: Coordinator
    clock: Clock
    http: aiohttp.ClientSession
    spotify: SpotifyClient
    tracker: Tracker
    labeler: Labeler
    deliverer: Deliverer | None
    publisher: Publisher | None
    dm_outbox: DmOutbox | None
    runner: Runner
    services: Services
    _closing: contextlib.AsyncExitStack = field(repr=False)
    musicdata: MusicSignal | None = None
    release_day: ReleaseDayProber | None = None
    announcer: Announcer | None = None
    metrics: Metrics | None = None

    async def close(self) -> None:
        """Close what :func:`build_core` opened, last opened first (idempotent)."""
        await self._closing.aclose()

    async def __aenter__(self) -> Core:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def build_core(
    settings: Settings,
    *,
    sender: Sender | None = None,
    clock: Clock | None = None,
    session: aiohttp.ClientSession | None = None,
    sleep: Sleep = asyncio.sleep,
    owner: str | None = None,
    concurrency: int | None = None,
    migrate: bool = True,
    metrics: Metrics | None = None,
) -> Core:
    """Open the store, start this process's coordinator and build everything on them (see the module docstring).

    ``sender``: how posts reach Discord (None: no deliverer, the runner only tracks); ``clock``:
    aware UTC now for every shared decision (None: the database's clock, a
    :class:`bot.coordination.coordinator.DatabaseClock`); ``session``: the HTTP session of the
    Spotify and music-data clients (None: one is opened here and closed by :meth:`Core.close`);
    ``sleep``: the Spotify and music-data clients' waits; ``owner``: this process's owner id
    (None: ``host:pid:random``); ``concurrency``: artists checked at once (None: ``[spotify] max_concurrency``); ``migrate``:
    migrate the store at start (False: it must be at head already); ``metrics``: fed by the components'
    hooks (:func:`bot.ops.metrics.instrument`; None: no metrics are kept). On a failure what was
    already opened is closed and the error propagates.
    """
    sp, tr = settings.spotify, settings.tracking
    opened = contextlib.AsyncExitStack()
    try:
        db = await open_store(settings, migrate=migrate)
        opened.push_async_callback(db.close)
        # Several processes may share the store (docs/multiprocess.md): this process's owner id,
        # heartbeat and the clock every shared decision uses.
        coordinator = Coordinator(
            db,
            clock=clock,
            lease_seconds=settings.coordination.lease_seconds,
            heartbeat_seconds=settings.coordination.heartbeat_seconds,
            shard_ids=settings.discord.shard_ids,
            owner=owner,
        )
        await coordinator.start()
        opened.push_async_callback(coordinator.stop)
        shared = coordinator.clock
        if session is None:
            session = aiohttp.ClientSession()
            opened.push_async_callback(session.close)
        spotify = spotify_client(sp, session=session, clock=shared, sleep=sleep)
        opened.push_async_callback(spotify.close)
        spotify.on_cooldown = functools.partial(persist_cooldown, db)
        coordinator.on_beat.append(functools.partial(share_spotify_state, db, spotify, coordinator))
        tracker = Tracker(
            db,
            spotify,
            clock=shared,
            concurrency=sp.max_concurrency if concurrency is None else concurrency,
            requests_per_run=sp.requests_per_run,
            requests_per_day=sp.requests_per_day,
            reserve_share=tr.reserve_share,
            economy=tr.economy,
            economy_inactive_days=tr.economy_inactive_days,
            economy_every=tr.economy_every,
            recheck_share=tr.recheck_share,
            coordinator=coordinator,
        )
        labeler = Labeler(db, spotify, clock=shared)
        deliverer, publisher, dm_outbox = None, None, None
        if sender is not None:
            retry = settings.delivery.retry_seconds
            publisher = Publisher(db, sender, clock=shared, poll_seconds=retry)
            dm_outbox = DmOutbox(
                db,
                sender,
                clock=shared,
                coordinator=coordinator,
                per_second=settings.delivery.dm_per_second,
                poll_seconds=retry,
            )
            deliverer = Deliverer(
                db,
                sender,
                clock=shared,
                coordinator=coordinator,
                publisher=publisher,
                on_dms=dm_outbox.wake,
                retry_backoff=settings.delivery.retry_backoff_seconds,
            )
        music = music_clients(settings.musicbrainz, db, session=session, clock=shared, sleep=sleep)
        signal = music_signal(settings.musicbrainz, db, coordinator, music, clock=shared)
        runner = Runner(
            db,
            tracker,
            deliverer,
            clock=shared,
            labeler=labeler,
            coordinator=coordinator,
            before_delivery=None if signal is None else signal.match_now,
        )
        release_day = None
        if deliverer is not None and settings.musicbrainz.enabled:
            rd = settings.release_day
            release_day = ReleaseDayProber(
                db,
                runner,
                deliverer,
                tracker,
                clock=shared,
                market=sp.market,
                max_probes=rd.max_probes,
                probe_hours=rd.probe_hours,
                hold_seconds=max(1800.0, 3 * settings.coordination.lease_seconds),
            )
        if metrics is not None:
            opened.callback(
                instrument(
                    metrics,
                    db=db,
                    coordinator=coordinator,
                    spotify=spotify,
                    runner=runner,
                    deliverer=deliverer,
                    clock=shared,
                    requests_per_day=sp.requests_per_day,
                )
            )
        schedule = settings.default_schedule
        services = Services.create(
            db=db,
            spotify=spotify,
            tracker=tracker,
            runner=runner,
            coordinator=coordinator,
            clock=shared,
            default_schedule=DefaultSchedule(schedule.day, schedule.time, schedule.timezone),
            history=listening_history(
                settings.lastfm, settings.musicbrainz.contact, music, session=session, sleep=sleep
            ),
        )
        return Core(
            settings=settings,
            db=db,
            coordinator=coordinator,
            clock=shared,
            http=session,
            spotify=spotify,
            tracker=tracker,
            labeler=labeler,
            deliverer=deliverer,
            publisher=publisher,
            dm_outbox=dm_outbox,
            runner=runner,
            services=services,
            _closing=opened,
            metrics=metrics,
            musicdata=signal,
            release_day=release_day,
            announcer=(
                Announcer(db, sender, clock=shared, coordinator=coordinator)
                if sender is not None and settings.musicbrainz.enabled
                else None
            ),
        )
    except BaseException:
        await opened.aclose()
        raise
