"""Typed settings loaded from a TOML file, with secrets and the database URL from the environment.

Keys are documented in ``config.example.toml``. Environment variables override:
``DISCORD_TOKEN``, ``SPOTIFY_CLIENT_ID``, ``SPOTIFY_CLIENT_SECRET``, ``DATABASE_URL``.
Any missing or invalid value raises :class:`ConfigError` whose message is one line
naming the key, so start-up can print it instead of a traceback.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bot.scheduling.due import parse_day, parse_time, parse_timezone


class ConfigError(Exception):
    """A missing or invalid configuration value; ``str()`` is one line naming the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config error: {key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class DiscordSettings:
    """``[discord]``: bot ``token`` (secret), REST ``api_base_url`` and ``gateway_url``, and shards.

    ``shard_count``: the total number of shards ("Gateway" > "Sharding"), or None for one
    unsharded process (the default). ``shard_ids``: the shards this process runs, distinct,
    each in ``0..shard_count-1``, sorted; when the key is absent with ``shard_count`` set it is
    every shard (``0..shard_count-1``); None exactly when ``shard_count`` is None.
    """

    token: str = field(repr=False)
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SpotifySettings:
    """``[spotify]``: client-credentials app (secret never printed), base URLs and ``market`` (ISO 3166-1 alpha-2)."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    api_base_url: str = "https://api.spotify.com/v1"
    accounts_base_url: str = "https://accounts.spotify.com"
    market: str = "US"
    # Request budgets (0 = unlimited), concurrency and the client-side rate limit (docs/tracking.md).
    requests_per_run: int = 5000
    requests_per_day: int = 20000
    max_concurrency: int = 4
    rate_limit_per_30s: int = 150


@dataclass(frozen=True)
class TrackingSettings:
    """``[tracking]``: starvation reserve and economy mode (docs/tracking.md)."""

    reserve_share: float = 0.25
    economy: bool = False
    economy_inactive_days: int = 365
    economy_every: int = 4
    # Rotating exact re-check: share of each run's artists whose listing is read whole (0 = off);
    # the default reads every artist whole within ceil(1/0.125) = 8 weekly runs.
    recheck_share: float = 0.125


@dataclass(frozen=True)
class DatabaseSettings:
    """``[database]`` engine options for PostgreSQL (SQLite ignores them).

    ``pool_size``: pooled connections (1–1000); ``pool_pre_ping``: test a pooled connection
    before use; ``application_name``: shown by PostgreSQL in ``pg_stat_activity`` (1–63
    printable ASCII characters). The URL itself is ``Settings.database_url``.
    """

    pool_size: int = 10
    pool_pre_ping: bool = True
    application_name: str = "release-bot"

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments for ``storage.db.open_database``."""
        return {
            "pool_size": self.pool_size,
            "pool_pre_ping": self.pool_pre_ping,
            "application_name": self.application_name,
        }


@dataclass(frozen=True)
class CoordinationSettings:
    """``[coordination]``: several processes on one database (docs/multiprocess.md).

    ``heartbeat_seconds``: how often a process proves it is alive (1–300 s);
    ``lease_seconds``: how long what a process holds outlives its last heartbeat — a dead
    process's guilds, artists and claims are taken over after it (more than twice the
    heartbeat, at most 3600 s).
    """

    heartbeat_seconds: float = 10.0
    lease_seconds: float = 60.0


@dataclass(frozen=True)
class ScheduleSettings:
    """``[schedule]``: default weekly slot for new guilds (``day`` 0=Monday, local ``time`` "HH:MM", IANA ``timezone``)."""

    day: int = 4
    time: str = "12:00"
    timezone: str = "UTC"


@dataclass(frozen=True)
class Settings:
    """All settings. ``scan_interval_seconds`` is how often the due scan runs (seconds)."""

    discord: DiscordSettings
    spotify: SpotifySettings
    database_url: str = "sqlite+aiosqlite:///data/release-bot.db"
    scan_interval_seconds: float = 60.0
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    coordination: CoordinationSettings = field(default_factory=CoordinationSettings)


def _int(table: Mapping[str, Any], section: str, key: str, default: int, low: int, high: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{section}.{key}", f"must be a whole number from {low} to {high}, got {value!r}")
    return value


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(name, "must be a table, e.g. [" + name + "]")
    return value


def _string(
    table: Mapping[str, Any], section: str, key: str, default: str | None, env: str | None, environ: Mapping[str, str]
) -> str:
    full = f"{section}.{key}"
    if env and environ.get(env):
        return environ[env].strip()
    value = table.get(key, default)
    if value is None or (isinstance(value, str) and not value.strip()):
        hint = f" (or set {env})" if env else ""
        raise ConfigError(full, f"missing{hint}")
    if not isinstance(value, str):
        raise ConfigError(full, f"must be a string, got {type(value).__name__}")
    return value.strip()


def _url(value: str, key: str, schemes: tuple[str, ...]) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise ConfigError(key, f"must be a {' or '.join(schemes)} URL, got {value!r}")
    return value.rstrip("/") if parsed.scheme.startswith("http") else value


MAX_SHARDS = 100_000  # far above what Discord recommends for the largest bots


def _shards(table: Mapping[str, Any]) -> tuple[int | None, tuple[int, ...] | None]:
    """``[discord] shard_count`` / ``shard_ids`` → ``(count, ids)`` (see :class:`DiscordSettings`)."""
    count = table.get("shard_count")
    ids = table.get("shard_ids")
    if count is None:
        if ids is not None:
            raise ConfigError("discord.shard_ids", "needs discord.shard_count (the total number of shards)")
        return None, None
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SHARDS:
        raise ConfigError("discord.shard_count", f"must be a whole number from 1 to {MAX_SHARDS}, got {count!r}")
    if ids is None:
        return count, tuple(range(count))
    if (
        not isinstance(ids, list)
        or not ids
        or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < count for i in ids)
    ):
        raise ConfigError(
            "discord.shard_ids",
            f"must be a non-empty list of shard numbers from 0 to {count - 1} (shard_count - 1), got {ids!r}",
        )
    if len(set(ids)) != len(ids):
        raise ConfigError("discord.shard_ids", f"must not repeat a shard, got {ids!r}")
    return count, tuple(sorted(ids))


def load_config(path: str | Path | None, environ: Mapping[str, str], *, require_secrets: bool = True) -> Settings:
    """Read ``path`` (TOML; may be None or absent when everything comes from ``environ``).

    With ``require_secrets=False`` a missing token/client id/secret becomes ``""``
    (used by ``release-bot check`` without Discord, and by ``demo``).
    Raises :class:`ConfigError` (one line naming the key) for any bad value.
    """
    data: Mapping[str, Any] = {}
    if path is not None:
        p = Path(path)
        if p.exists():
            try:
                data = tomllib.loads(p.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(str(p), f"not valid TOML ({exc})") from None
    d, s, db, sch, dflt, trk = (
        _table(data, n) for n in ("discord", "spotify", "database", "scheduler", "schedule", "tracking")
    )

    def secret(table, section, key, env):
        try:
            return _string(table, section, key, None, env, environ)
        except ConfigError:
            if require_secrets:
                raise
            return ""

    shard_count, shard_ids = _shards(d)
    discord = DiscordSettings(
        shard_count=shard_count,
        shard_ids=shard_ids,
        token=secret(d, "discord", "token", "DISCORD_TOKEN"),
        api_base_url=_url(
            _string(d, "discord", "api_base_url", DiscordSettings.api_base_url, None, environ),
            "discord.api_base_url",
            ("http", "https"),
        ),
        gateway_url=_url(
            _string(d, "discord", "gateway_url", DiscordSettings.gateway_url, None, environ),
            "discord.gateway_url",
            ("ws", "wss"),
        ),
    )
    market = _string(s, "spotify", "market", "US", None, environ).upper()
    if len(market) != 2 or not market.isalpha():
        raise ConfigError("spotify.market", f"must be a two-letter country code, got {market!r}")
    spotify = SpotifySettings(
        client_id=secret(s, "spotify", "client_id", "SPOTIFY_CLIENT_ID"),
        client_secret=secret(s, "spotify", "client_secret", "SPOTIFY_CLIENT_SECRET"),
        api_base_url=_url(
            _string(s, "spotify", "api_base_url", SpotifySettings.api_base_url, None, environ),
            "spotify.api_base_url",
            ("http", "https"),
        ),
        accounts_base_url=_url(
            _string(s, "spotify", "accounts_base_url", SpotifySettings.accounts_base_url, None, environ),
            "spotify.accounts_base_url",
            ("http", "https"),
        ),
        market=market,
        requests_per_run=_int(s, "spotify", "requests_per_run", SpotifySettings.requests_per_run, 0, 10_000_000),
        requests_per_day=_int(s, "spotify", "requests_per_day", SpotifySettings.requests_per_day, 0, 100_000_000),
        max_concurrency=_int(s, "spotify", "max_concurrency", SpotifySettings.max_concurrency, 1, 64),
        rate_limit_per_30s=_int(s, "spotify", "rate_limit_per_30s", SpotifySettings.rate_limit_per_30s, 0, 100_000),
    )
    share = trk.get("reserve_share", TrackingSettings.reserve_share)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ConfigError("tracking.reserve_share", f"must be a number above 0 and at most 1, got {share!r}")
    economy = trk.get("economy", False)
    if not isinstance(economy, bool):
        raise ConfigError("tracking.economy", f"must be true or false, got {economy!r}")
    recheck = trk.get("recheck_share", TrackingSettings.recheck_share)
    if isinstance(recheck, bool) or not isinstance(recheck, (int, float)) or not 0 <= recheck <= 1:
        raise ConfigError(
            "tracking.recheck_share",
            f"must be a number from 0 (off) to 1 (every artist read whole every run), got {recheck!r}",
        )
    tracking = TrackingSettings(
        reserve_share=float(share),
        recheck_share=float(recheck),
        economy=economy,
        economy_inactive_days=_int(trk, "tracking", "economy_inactive_days", 365, 1, 36500),
        economy_every=_int(trk, "tracking", "economy_every", 4, 1, 520),
    )
    database_url = _string(db, "database", "url", Settings.database_url, "DATABASE_URL", environ)
    if "://" not in database_url:
        raise ConfigError(
            "database.url",
            f"must be a SQLAlchemy URL such as sqlite+aiosqlite:///data/release-bot.db, got {database_url!r}",
        )
    pre_ping = db.get("pool_pre_ping", DatabaseSettings.pool_pre_ping)
    if not isinstance(pre_ping, bool):
        raise ConfigError("database.pool_pre_ping", f"must be true or false, got {pre_ping!r}")
    app_name = db.get("application_name", DatabaseSettings.application_name)
    if not isinstance(app_name, str) or not 1 <= len(app_name) <= 63 or not all(" " <= c <= "~" for c in app_name):
        raise ConfigError("database.application_name", f"must be 1 to 63 printable ASCII characters, got {app_name!r}")
    database = DatabaseSettings(
        pool_size=_int(db, "database", "pool_size", DatabaseSettings.pool_size, 1, 1000),
        pool_pre_ping=pre_ping,
        application_name=app_name,
    )

    co = _table(data, "coordination")
    beat = co.get("heartbeat_seconds", CoordinationSettings.heartbeat_seconds)
    if isinstance(beat, bool) or not isinstance(beat, (int, float)) or not 1 <= beat <= 300:
        raise ConfigError("coordination.heartbeat_seconds", f"must be a number of seconds from 1 to 300, got {beat!r}")
    lease = co.get("lease_seconds", CoordinationSettings.lease_seconds)
    if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not 2 * beat < lease <= 3600:
        raise ConfigError(
            "coordination.lease_seconds",
            f"must be a number of seconds above twice heartbeat_seconds ({2 * beat:g}) and at most 3600, got {lease!r}",
        )
    coordination = CoordinationSettings(heartbeat_seconds=float(beat), lease_seconds=float(lease))

    interval = s_interval = sch.get("scan_interval_seconds", 60)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 1 <= interval <= 3600:
        raise ConfigError(
            "scheduler.scan_interval_seconds", f"must be a number of seconds from 1 to 3600, got {s_interval!r}"
        )

    try:
        day = parse_day(str(dflt.get("day", "friday")))
    except ValueError as exc:
        raise ConfigError("schedule.day", str(exc)) from None
    try:
        time = parse_time(str(dflt.get("time", "12:00")))
    except ValueError as exc:
        raise ConfigError("schedule.time", str(exc)) from None
    try:
        tz = parse_timezone(str(dflt.get("timezone", "UTC")))
    except ValueError as exc:
        raise ConfigError("schedule.timezone", str(exc)) from None

    return Settings(
        discord=discord,
        spotify=spotify,
        database_url=database_url,
        scan_interval_seconds=float(interval),
        schedule=ScheduleSettings(day=day, time=time, timezone=tz),
        tracking=tracking,
        database=database,
        coordination=coordination,
    )
