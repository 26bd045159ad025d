"""The process's Prometheus metrics (docs/operations.md, "Metrics"), on one :class:`Metrics` object.

Every metric lives on ``Metrics.registry`` (a ``prometheus_client.CollectorRegistry`` of its own, not
the library's global one), so two bots in one Python process (the tests) keep theirs apart. The
components feed it through narrow hooks that :func:`instrument` sets (``bot/wiring.py`` calls it):
the Spotify client's ``on_response``, the runner's ``on_finished``, the deliverer's ``on_result`` and
``on_settled``, the coordinator's ``on_takeover``, and the store's statement timer
(:func:`storage.health.time_statements`). Labels are bounded: an endpoint, a status, a trigger, a
result, a statement kind, a lease kind, a shard number — never a guild, artist or user id.

Values shared by the whole Spotify developer account (the day's request budget, the quota cooldown)
are read from the store at each heartbeat and exported by **one** process only: the holder of the
named lease :data:`ACCOUNT_LEASE` (taken over, like any lease, when its holder dies). Summing them over
processes therefore does not multiply them; ``max()`` is the documented aggregation, which also
stays right during a hand-over, when two processes may export them for one heartbeat.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bot.clock import Clock
from bot.coordination.coordinator import Coordinator
from bot.delivery.deliverer import Deliverer, DeliveryResult
from bot.scheduling.runner import TRIGGERS, Runner, RunSummary
from bot.spotify.client import SpotifyClient
from storage import health, spotify_state
from storage.db import Database

log = logging.getLogger(__name__)

PREFIX = "release_bot_"
ACCOUNT_LEASE = "metrics:account"
"""The named lease whose holder exports the account-wide values (budget, cooldown)."""

RUN_STATUSES = ("ok", "partial", "failed")
DELIVERY_RESULTS = ("posted", "settled", "failed", "skipped")
TAKEOVER_KINDS = ("guild", "lease")

RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
"""Seconds: a small /refresh to a 10,000-artist weekly run."""
LATENCY_BUCKETS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 4 * 86400, 7 * 86400)
"""Seconds from a release first seen to its post: minutes (a /refresh) to a week (the weekly post)."""
STATEMENT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds of one SQL statement."""

ShardStates = Callable[[], Mapping[int, tuple[bool, float | None]]]
"""``{shard id: (ready, gateway latency in seconds or None)}`` of this process's shards, read at
each scrape and readiness check (set by ``bot/discord_app``; bot/ops never imports discord)."""


@dataclass(frozen=True)
class AccountState:
    """The account-wide Spotify values this process exports (it holds :data:`ACCOUNT_LEASE`):
    ``used`` requests of the UTC day, ``limit`` (``[spotify] requests_per_day``, 0 = unlimited),
    ``cooldown_until`` (aware UTC, None when there is no cooldown)."""

    used: int
    limit: int
    cooldown_until: dt.datetime | None


class Metrics:
    """One process's metrics. See docs/operations.md for each metric's meaning and labels.

    ``process_collectors``: also export ``process_*`` (CPU, resident memory, open files),
    ``python_gc_*`` and ``python_info`` (False in unit tests that compare exact output).
    ``shards``: the shard states callable (:data:`ShardStates`), None until the Discord client sets it.
    ``account``: the account-wide values, None on a process that does not export them.
    """

    def __init__(self, *, process_collectors: bool = True) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``*_created`` series: they double the output and no panel reads them
        r = self.registry = CollectorRegistry(auto_describe=True)
        if process_collectors:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        p = PREFIX
        self.spotify_requests = Counter(
            p + "spotify_requests",
            "Spotify HTTP requests sent, retries and token requests included, by endpoint and answer "
            "(an HTTP status, or timeout / error when none came).",
            ["endpoint", "status"],
            registry=r,
        )
        self.spotify_rate_limited = Counter(
            p + "spotify_rate_limited",
            "Spotify 429 answers (rate limit or quota), by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self.runs = Counter(p + "runs", "Runs finished, by trigger and status.", ["trigger", "status"], registry=r)
        self.run_duration = Histogram(
            p + "run_duration_seconds",
            "Wall seconds of a run, by trigger.",
            ["trigger"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.run_coverage = Gauge(
            p + "run_coverage_ratio",
            "Share of the due artists the last run of this trigger checked (0-1).",
            ["trigger"],
            registry=r,
        )
        self.artists_due = Counter(p + "artists_due", "Artists due in the runs finished.", registry=r)
        self.artists_checked = Counter(p + "artists_checked", "Artists checked by the runs finished.", registry=r)
        self.releases_found = Counter(
            p + "releases_found", "New releases the runs found (each once, however many servers get it).", registry=r
        )
        self.deliveries = Counter(
            p + "deliveries",
            "Deliveries by result: posted (announcements posted), settled (unconfirmed posts found in "
            "the channel and confirmed), failed (announcements a delivery could not post; retried later), "
            "skipped (releases recorded skipped: a type or filter the server does not want).",
            ["result"],
            registry=r,
        )
        self.post_latency = Histogram(
            p + "release_post_latency_seconds",
            "Seconds from a release first seen by tracking to its announcement posted (one per server).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_statement = Histogram(
            p + "db_statement_seconds",
            "Seconds of one SQL statement, by kind (select, insert, update, delete, other).",
            ["kind"],
            buckets=STATEMENT_BUCKETS,
            registry=r,
        )
        self.takeovers = Counter(
            p + "lease_takeovers",
            "Leases taken over from a process that stopped beating: guild (a due guild's weekly run) "
            "or lease (a named lease: a server's delivery, /refresh, command sync, ...).",
            ["kind"],
            registry=r,
        )
        for trigger in TRIGGERS:
            for status in RUN_STATUSES:
                self.runs.labels(trigger, status)
        for result in DELIVERY_RESULTS:
            self.deliveries.labels(result)
        for kind in TAKEOVER_KINDS:
            self.takeovers.labels(kind)
        for kind in health.STATEMENT_KINDS:
            self.db_statement.labels(kind)
        self.shards: ShardStates | None = None
        self.account: AccountState | None = None
        r.register(_LiveValues(self))

    # --- hooks ------------------------------------------------------------------------------

    def spotify_response(self, endpoint: str, status: str) -> None:
        """The Spotify client's ``on_response``: one request to ``endpoint`` answered ``status``."""
        self.spotify_requests.labels(endpoint, status).inc()
        if status == "429":
            self.spotify_rate_limited.labels(endpoint).inc()

    def run_finished(self, summary: RunSummary, seconds: float) -> None:
        """The runner's ``on_finished``: a run ended (``seconds``: its wall time)."""
        trigger = summary.trigger
        self.runs.labels(trigger, summary.status).inc()
        self.run_duration.labels(trigger).observe(max(0.0, seconds))
        self.run_coverage.labels(trigger).set(summary.coverage)
        self.artists_due.inc(max(0, summary.artists_due))
        self.artists_checked.inc(max(0, summary.artists_checked))
        self.releases_found.inc(max(0, summary.releases_found))

    def delivered(self, result: DeliveryResult, now: dt.datetime) -> None:
        """The deliverer's ``on_result``: one guild's delivery ended at ``now`` (aware UTC)."""
        self.deliveries.labels("posted").inc(result.posted)
        self.deliveries.labels("skipped").inc(result.skipped)
        if result.error is not None and result.pending > 0:
            self.deliveries.labels("failed").inc(result.pending)
        for first_seen in result.first_seen:
            self.post_latency.observe(max(0.0, (now - first_seen).total_seconds()))

    def settled(self, confirmed: int) -> None:
        """The deliverer's ``on_settled``: ``confirmed`` claims found posted and confirmed."""
        self.deliveries.labels("settled").inc(confirmed)

    def taken_over(self, kind: str, count: int) -> None:
        """The coordinator's ``on_takeover``: ``count`` leases of ``kind`` taken from dead processes."""
        self.takeovers.labels(kind).inc(count)

    def statement(self, kind: str, seconds: float) -> None:
        """The store's statement timer: one SQL statement of ``kind`` took ``seconds``."""
        self.db_statement.labels(kind).observe(seconds)

    def render(self) -> bytes:
        """The text exposition format (``text/plain; version=0.0.4``) of every metric."""
        return generate_latest(self.registry)


class _LiveValues:
    """The values read when scraped: shards (ready, gateway latency) and the account-wide ones."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        ready = GaugeMetricFamily(PREFIX + "shards_ready", "Shards of this process that are connected and ready.")
        configured = GaugeMetricFamily(PREFIX + "shards", "Shards this process runs.")
        latency = GaugeMetricFamily(
            PREFIX + "gateway_latency_seconds",
            "Discord gateway latency per shard (heartbeat to acknowledgement), seconds.",
            labels=["shard"],
        )
        states = dict(m.shards()) if m.shards is not None else {}
        ready.add_metric([], sum(1 for ok, _ in states.values() if ok))
        configured.add_metric([], len(states))
        for shard, (_ok, seconds) in sorted(states.items()):
            if seconds is not None and math.isfinite(seconds):
                latency.add_metric([str(shard)], seconds)
        yield ready
        yield configured
        yield latency
        exporter = GaugeMetricFamily(
            PREFIX + "account_exporter", "1 on the process that exports the account-wide Spotify values, else 0."
        )
        exporter.add_metric([], 0 if m.account is None else 1)
        yield exporter
        account = m.account
        if account is None:
            return
        used = GaugeMetricFamily(
            PREFIX + "spotify_budget_used_requests",
            "Spotify requests counted against the UTC day's budget, all processes together (account-wide: "
            "exported by one process; aggregate with max).",
        )
        used.add_metric([], account.used)
        yield used
        if account.limit > 0:
            left = GaugeMetricFamily(
                PREFIX + "spotify_budget_left_requests",
                "Spotify requests left in the UTC day's budget (account-wide; absent when unlimited).",
            )
            left.add_metric([], max(0, account.limit - account.used))
            yield left
        until = GaugeMetricFamily(
            PREFIX + "spotify_cooldown_until_seconds",
            "Unix time (seconds) the Spotify quota cooldown ends, 0 when there is none (account-wide).",
        )
        until.add_metric([], 0.0 if account.cooldown_until is None else account.cooldown_until.timestamp())
        yield until


async def refresh_account(metrics: Metrics, db: Database, coordinator: Coordinator, requests_per_day: int) -> None:
    """At each heartbeat: hold (or take) :data:`ACCOUNT_LEASE`; its holder reads the day's budget and the
    cooldown from the store into ``metrics.account``, every other process clears it. A cooldown already
    over (by the coordinator's clock) reads as none."""
    if not await coordinator.try_lease(ACCOUNT_LEASE):
        metrics.account = None
        return
    now = coordinator.clock()
    async with db.transaction() as session:
        used = await spotify_state.budget_used_today(session, now.astimezone(dt.UTC).date().isoformat())
        until, _reason = await spotify_state.get_cooldown(session)
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    metrics.account = AccountState(
        used=used, limit=requests_per_day, cooldown_until=until if until is not None and until > now else None
    )


def instrument(
    metrics: Metrics,
    *,
    db: Database,
    coordinator: Coordinator,
    spotify: SpotifyClient,
    runner: Runner,
    deliverer: Deliverer | None,
    clock: Clock,
    requests_per_day: int,
) -> Callable[[], None]:
    """Set the hooks that feed ``metrics`` on the components ``bot/wiring.py`` built, and the heartbeat
    callback of the account-wide values. Returns a function removing the store's statement timer
    (the other hooks go with their objects)."""
    spotify.on_response = metrics.spotify_response
    runner.on_finished = metrics.run_finished
    if deliverer is not None:
        deliverer.on_result = lambda result: metrics.delivered(result, clock())
        deliverer.on_settled = metrics.settled
    coordinator.on_takeover.append(metrics.taken_over)

    async def account() -> None:
        await refresh_account(metrics, db, coordinator, requests_per_day)

    coordinator.on_beat.append(account)
    return health.time_statements(db, metrics.statement)
