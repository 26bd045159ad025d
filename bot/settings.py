"""Typed settings: one pydantic model of the whole configuration, read from a TOML file and a few
environment variables.

:func:`load_settings` reads the file (``[discord]``, ``[spotify]``, ``[tracking]``, ``[database]``,
``[due_scan]``, ``[default_schedule]``, ``[coordination]``, ``[musicbrainz]``, ``[lastfm]``, ``[http]``, ``[logging]``,
``[sentry]``), lets the variables of :data:`ENVIRONMENT` override it (``DISCORD_TOKEN``, ``SPOTIFY_CLIENT_ID``,
``SPOTIFY_CLIENT_SECRET``, ``LASTFM_API_KEY``, ``DATABASE_URL``, ``SENTRY_DSN``; no other variable is read) and fills the rest with the defaults declared here.
An unknown section or key, a renamed section, or a value out of bounds raises :class:`ConfigError`,
whose ``str()`` is one line naming the key, so the command line prints it instead of a traceback.

Every key is declared once below with its type, default, bounds and description; the reference
(``docs/configuration.md``) and ``config.example.toml`` are generated from :func:`schema`.
Secrets (``discord.token``, ``spotify.client_id``, ``spotify.client_secret``, ``lastfm.api_key``, ``sentry.dsn``) are ``SecretStr``:
never in a ``repr``, a log record or ``release-bot config``; read them with ``get_secret_value()``.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, TypedDict, Union, get_args, get_origin
from urllib.parse import urlparse

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from bot.scheduling.due import DAY_NAMES, parse_day, parse_time, parse_timezone


class ConfigError(Exception):
    """A configuration the bot cannot run with. ``str()`` is one line: ``config error: <key>: <problem>``.

    ``key``: what is at fault — a dotted key (``discord.token``), a section (``scheduler``) or the
    file's path; ``problem``: what is wrong with it, e.g. ``must be a whole number from 1 to 64, got 0``.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.key = key
        self.problem = problem

    def __str__(self) -> str:
        return f"config error: {self.key}: {self.problem}"


class UnknownKeyError(ConfigError):
    """An unknown or renamed section or key. ``problem`` is the whole sentence, naming it and the
    closest known name: ``config error: unknown key discord.shard_id — did you mean discord.shard_ids?``."""

    def __str__(self) -> str:
        return f"config error: {self.problem}"


@dataclass(frozen=True)
class Allowed:
    """``Annotated`` metadata: what a key accepts, in words, where its type and bounds don't say it
    (``"a two-letter country code"``). Used by error messages and the generated reference."""

    text: str


@dataclass(frozen=True)
class _Loading:
    """What :func:`load_settings` is validating: values typed by a person (file, environment).

    ``require_secrets``: a missing token, client id or client secret is an error (``run``).
    """

    require_secrets: bool


# Set by load_settings while it validates. A context variable rather than pydantic's validation
# context, which BaseSettings.__init__ does not pass on (pydantic's documented pattern for __init__).
_LOADING: ContextVar[_Loading | None] = ContextVar("release_bot_settings_loading", default=None)


ENVIRONMENT: Final[Mapping[str, tuple[str, str]]] = {
    "DISCORD_TOKEN": ("discord", "token"),
    "SPOTIFY_CLIENT_ID": ("spotify", "client_id"),
    "SPOTIFY_CLIENT_SECRET": ("spotify", "client_secret"),
    "DATABASE_URL": ("database", "url"),
    "LASTFM_API_KEY": ("lastfm", "api_key"),
    "SENTRY_DSN": ("sentry", "dsn"),
}
"""The only environment variables read: each overrides one key of the file when set and not blank."""

RENAMED: Final[Mapping[str, str]] = {
    "scheduler": "[due_scan] interval_seconds",  # was [scheduler] scan_interval_seconds
    "schedule": "[default_schedule]",
}
"""Sections of earlier versions → what to write instead; such a section is refused, saying so."""

MAX_SHARDS: Final = 100_000  # far above what Discord recommends for the largest bots


def _env_of(section: str, key: str) -> str | None:
    return next((var for var, place in ENVIRONMENT.items() if place == (section, key)), None)


def _secret(value: SecretStr, info: ValidationInfo, section: str) -> SecretStr:
    """A secret with surrounding spaces removed; missing is an error when the loader requires secrets."""
    text = value.get_secret_value().strip()
    loading = _LOADING.get()
    if not text and loading is not None and loading.require_secrets:
        raise ValueError(f"missing (or set {_env_of(section, str(info.field_name))})")
    return SecretStr(text)


def _url(value: str, schemes: tuple[str, ...]) -> str:
    value = value.strip()
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise ValueError(f"must be a {' or '.join(schemes)} URL, got {value!r}")
    return value.rstrip("/") if parsed.scheme.startswith("http") else value


def _http_url(value: str) -> str:
    return _url(value, ("http", "https"))


def _websocket_url(value: str) -> str:
    return _url(value, ("ws", "wss"))


_HttpUrl = Annotated[StrictStr, AfterValidator(_http_url), Allowed("an http or https URL")]
"""An ``http(s)://host…`` URL, trailing ``/`` removed."""
_WebSocketUrl = Annotated[StrictStr, AfterValidator(_websocket_url), Allowed("a ws or wss URL")]
"""A ``ws(s)://host…`` URL, kept as written."""


class _Section(BaseModel):
    """One ``[section]`` of the file: unknown keys refused, immutable. Every field's type is strict
    (``"10"`` is not a number, ``1`` is not ``true``) — per field, so code may pass a ``str`` for a
    ``SecretStr``."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DiscordSettings(_Section):
    """``[discord]``: the bot token, the endpoints, and the shards this process runs.

    ``shard_count`` is None for one unsharded process. ``shard_ids`` is None exactly when
    ``shard_count`` is; otherwise the shards of this process, distinct and sorted, each in
    ``0..shard_count-1`` (every shard when the key is left out).
    """

    token: SecretStr = Field(
        SecretStr(""),
        validate_default=True,
        description="Bot token from the Discord Developer Portal → your application → Bot → Reset Token; needed by `run`.",
    )
    api_base_url: _HttpUrl = Field(
        "https://discord.com/api/v10",
        description="REST base URL; change it only to run against a Discord-compatible server (self-hosted, or the test fake).",
    )
    gateway_url: _WebSocketUrl = Field(
        "wss://gateway.discord.gg/",
        description="Gateway URL; change it only to run against a Discord-compatible server.",
    )
    shard_count: StrictInt | None = Field(
        None,
        ge=1,
        le=MAX_SHARDS,
        examples=[2],
        description="Total number of shards across all processes, the same in every process; leave it and shard_ids out for one process with no sharding.",
    )
    shard_ids: Annotated[
        tuple[int, ...] | None, Allowed("a list of distinct shard numbers from 0 to shard_count - 1")
    ] = Field(
        None,
        validate_default=True,
        examples=[[0]],
        description="The shards this process runs; needs shard_count; left out = all of them.",
    )

    @field_validator("token", mode="after")
    @classmethod
    def _token(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        return _secret(value, info, "discord")

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_ids(cls, value: object, info: ValidationInfo) -> tuple[int, ...] | None:
        if "shard_count" not in info.data:
            return None  # shard_count itself is refused; that error is the one reported
        count = info.data["shard_count"]
        if count is None:
            if value is not None:
                raise ValueError("needs discord.shard_count (the total number of shards)")
            return None
        if value is None:
            return tuple(range(count))
        if (
            not isinstance(value, list | tuple)
            or not value
            or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < count for i in value)
        ):
            raise ValueError(
                f"must be a non-empty list of shard numbers from 0 to {count - 1} (shard_count - 1), got {value!r}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"must not repeat a shard, got {value!r}")
        return tuple(sorted(value))


class SpotifySettings(_Section):
    """``[spotify]``: the client-credentials app, the endpoints, the market and the request budgets."""

    client_id: SecretStr = Field(
        SecretStr(""),
        validate_default=True,
        description="Client ID of the client-credentials app from https://developer.spotify.com/dashboard; needed by `run` and `check`.",
    )
    client_secret: SecretStr = Field(
        SecretStr(""),
        validate_default=True,
        description="Client secret of the same app; needed by `run` and `check`.",
    )
    api_base_url: _HttpUrl = Field("https://api.spotify.com/v1", description="Web API base URL.")
    accounts_base_url: _HttpUrl = Field(
        "https://accounts.spotify.com", description="Accounts service (token) base URL."
    )
    market: Annotated[StrictStr, Allowed("a two-letter country code (ISO 3166-1 alpha-2)")] = Field(
        "US",
        description="Market used to list releases as a listener there sees them.",
    )
    requests_per_run: StrictInt = Field(
        5000,
        ge=0,
        le=10_000_000,
        description="Spotify requests one run may make (0 = unlimited); artists not reached stay due and go first next time. An unchanged artist costs one request, so 5000 covers about 4,500 artists a run.",
    )
    requests_per_day: StrictInt = Field(
        20000,
        ge=0,
        le=100_000_000,
        description="Spotify requests per UTC day, runs and follows of all processes together (0 = unlimited). The quota belongs to the whole developer account and a breach locks the bot out for about a day.",
    )
    max_concurrency: StrictInt = Field(4, ge=1, le=64, description="Artists checked at once.")
    rate_limit_per_30s: StrictInt = Field(
        150,
        ge=0,
        le=100_000,
        description="Client-side limit on requests in any 30-second window, as Spotify rate-limits on a rolling 30 s window (0 = off).",
    )

    @field_validator("client_id", "client_secret", mode="after")
    @classmethod
    def _secrets(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        return _secret(value, info, "spotify")

    @field_validator("market", mode="after")
    @classmethod
    def _market(cls, value: str) -> str:
        market = value.strip().upper()
        if len(market) != 2 or not market.isalpha():
            raise ValueError(f"must be a two-letter country code, got {market!r}")
        return market


class TrackingSettings(_Section):
    """``[tracking]``: the starvation reserve, economy mode and the rotating re-check (docs/tracking.md)."""

    reserve_share: StrictFloat = Field(
        0.25,
        gt=0,
        le=1,
        description="Share of a budgeted run spent first on the artists unchecked the longest, so none starves.",
    )
    economy: StrictBool = Field(
        False,
        description="Economy mode: an artist with no release for economy_inactive_days is checked only every economy_every-th scheduled run (its new releases may be posted up to economy_every - 1 weeks late).",
    )
    economy_inactive_days: StrictInt = Field(
        365, ge=1, le=36500, description="Days without a release after which economy mode checks an artist less often."
    )
    economy_every: StrictInt = Field(
        4, ge=1, le=520, description="In economy mode, an inactive artist is checked every this many scheduled runs."
    )
    recheck_share: StrictFloat = Field(
        0.125,
        ge=0,
        le=1,
        description="Rotating exact re-check: share of each run's artists whose whole listing is read (0 = off), so a release the one-request probe cannot see is posted late, within ceil(1/share) weekly runs (8 by default), instead of never.",
    )


def _sqlalchemy_url(value: str) -> str:
    value = value.strip()
    if "://" not in value:
        raise ValueError(f"must be a SQLAlchemy URL such as sqlite+aiosqlite:///data/release-bot.db, got {value!r}")
    return value


class DatabaseSettings(_Section):
    """``[database]``: the URL, and the engine options PostgreSQL uses (SQLite ignores them)."""

    url: Annotated[StrictStr, AfterValidator(_sqlalchemy_url), Allowed("a SQLAlchemy async URL")] = Field(
        "sqlite+aiosqlite:///data/release-bot.db",
        repr=False,  # may carry a password
        description="Where the database is: SQLite needs nothing else; for PostgreSQL use postgresql+asyncpg://user:password@host:5432/dbname (a plain postgresql:// URL uses asyncpg too). Migrated at start-up, or by `release-bot migrate`.",
    )
    pool_size: StrictInt = Field(
        10,
        ge=1,
        le=1000,
        description="PostgreSQL: pooled connections (as many again may open briefly under load).",
    )
    pool_pre_ping: StrictBool = Field(
        True,
        description="PostgreSQL: test a pooled connection before using it, so a database restart is survived.",
    )
    application_name: Annotated[StrictStr, Allowed("1 to 63 printable ASCII characters")] = Field(
        "release-bot",
        description="PostgreSQL: the name shown in pg_stat_activity.",
    )

    @field_validator("application_name", mode="after")
    @classmethod
    def _application_name(cls, value: str) -> str:
        if not 1 <= len(value) <= 63 or not all(" " <= c <= "~" for c in value):
            raise ValueError(f"must be 1 to 63 printable ASCII characters, got {value!r}")
        return value

    def engine_options(self) -> EngineOptions:
        """Keyword arguments for ``storage.db.open_database``: ``pool_size``, ``pool_pre_ping``, ``application_name``."""
        return {
            "pool_size": self.pool_size,
            "pool_pre_ping": self.pool_pre_ping,
            "application_name": self.application_name,
        }


class EngineOptions(TypedDict):
    """The keyword arguments of ``storage.db.open_database`` that ``[database]`` sets."""

    pool_size: int
    pool_pre_ping: bool
    application_name: str


class DueScanSettings(_Section):
    """``[due_scan]``: how often the due scan looks for guilds whose weekly run is due."""

    interval_seconds: StrictFloat = Field(
        60.0,
        ge=1,
        le=3600,
        description="Seconds between two due scans, so at most how late a weekly run starts after its slot.",
    )


class ScheduleSettings(_Section):
    """A weekly slot: ``day`` 0 (Monday) … 6, local ``time`` ``"HH:MM"``, IANA ``timezone``.

    In the file ``day`` is a weekday name (``"friday"``, ``"fri"``); a number is refused there
    (0- vs 1-based and Sunday-first conventions disagree). Code passes the number.
    """

    day: Annotated[StrictInt, Allowed("a weekday name such as 'friday' or 'fri'")] = Field(
        4,
        ge=0,
        le=6,
        validate_default=False,
        description="Weekday of the weekly post.",
    )
    time: Annotated[StrictStr, Allowed("a 24-hour time HH:MM")] = Field(
        "12:00", description="Local time of the weekly post."
    )
    timezone: Annotated[StrictStr, Allowed("an IANA time zone name such as Europe/Berlin")] = Field(
        "UTC", description="Time zone of the day and time (daylight saving time handled)."
    )

    @field_validator("day", mode="before")
    @classmethod
    def _day(cls, value: object) -> object:
        if _LOADING.get() is not None or isinstance(value, str):
            return parse_day(str(value))
        return value

    @field_serializer("day")
    def _day_name(self, day: int) -> str:
        return DAY_NAMES[day]

    @field_validator("time", mode="after")
    @classmethod
    def _time(cls, value: str) -> str:
        return parse_time(value)

    @field_validator("timezone", mode="after")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return parse_timezone(value)


class DeliverySettings(_Section):
    """``[delivery]``: the background work after a post — direct messages and crossposts (docs/design.md)."""

    dm_per_second: StrictFloat = Field(
        2.0,
        ge=0.1,
        le=20,
        description="Direct messages each process sends per second at most (Discord allows a bot 50 requests per second and watches DM bursts; 2 sends 1,000 DMs in about 8 minutes, beside the channel posts).",
    )
    retry_seconds: StrictFloat = Field(
        30.0,
        ge=1,
        le=3600,
        description="How often the background loops look for crossposts and DMs that fell due again (held back by Discord's rate limits or a failure).",
    )
    retry_backoff_seconds: list[StrictFloat] = Field(
        [120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 21600.0],
        min_length=1,
        max_length=20,
        description="Seconds from a delivery Discord failed (a 5xx after discord.py's own retries, a long or global 429, a network error) to the due scan's retry of the posts left waiting, by failures in a row; the last repeats, and a 429's retry_after is waited at least. Reset by a delivery that succeeds.",
    )

    @field_validator("retry_backoff_seconds", mode="after")
    @classmethod
    def _backoff(cls, value: list[float]) -> list[float]:
        if any(not 0 < s <= 86400 for s in value):
            raise ValueError(f"must be seconds above 0, at most 86400, got {value!r}")
        return value


class CoordinationSettings(_Section):
    """``[coordination]``: several processes on one database (docs/multiprocess.md)."""

    heartbeat_seconds: StrictFloat = Field(10.0, ge=1, le=300, description="How often a process proves it is alive.")
    lease_seconds: Annotated[
        StrictFloat, Allowed("a number of seconds above twice heartbeat_seconds, at most 3600")
    ] = Field(
        60.0,
        le=3600,
        validate_default=True,
        description="How long what a process holds (a due guild's run, an artist's check, a /refresh) outlives its last heartbeat: a dead process's work is taken over after it.",
    )

    @field_validator("lease_seconds", mode="after")
    @classmethod
    def _lease(cls, value: float, info: ValidationInfo) -> float:
        beat = info.data.get("heartbeat_seconds")
        if beat is not None and not value > 2 * beat:
            raise ValueError(
                f"must be a number of seconds above twice heartbeat_seconds ({2 * beat:g}) and at most 3600, got {value:g}"
            )
        return value


class HttpSettings(_Section):
    """``[http]``: this process's operations endpoints (docs/operations.md): ``GET /metrics``
    (Prometheus), ``/livez`` and ``/readyz``. Off (nothing listens, no metric is kept) while
    ``port`` is left out."""

    host: StrictStr = Field(
        "127.0.0.1",
        description="Address the operations endpoints listen on: 127.0.0.1 for this host only, 0.0.0.0 for every interface (in a container, so Prometheus and the health check reach it).",
    )
    port: StrictInt | None = Field(
        None,
        ge=0,
        le=65535,
        examples=[9100],
        description="Port of GET /metrics, /livez and /readyz; left out = off (nothing listens); 0 = any free port (logged at start-up).",
    )


_CONTACT_RE = re.compile(r"^[^@\s()]+@[^@\s()]+\.[^@\s()]+$")


def _contact(value: str) -> str:
    """An email address or an http(s) URL, as MusicBrainz wants it in a User-Agent; "" when unset."""
    value = value.strip()
    if not value or _CONTACT_RE.match(value):
        return value
    parsed = urlparse(value)
    if parsed.scheme in ("http", "https") and parsed.netloc and not any(c in value for c in " ()"):
        return value
    raise ValueError(f"must be an email address or an http(s) URL, got {value!r}")


class MusicBrainzSettings(_Section):
    """``[musicbrainz]``: the free second signal from MusicBrainz and ListenBrainz (docs/musicdata.md).

    Off by default. When ``enabled``, ``contact`` is required: MusicBrainz and ListenBrainz refuse
    clients without a meaningful User-Agent, ``release-bot/<version> ( <contact> )``.
    """

    enabled: StrictBool = Field(
        False,
        description="Map the followed artists to MusicBrainz and fetch ListenBrainz's fresh releases once a day (docs/musicdata.md). It never changes which artists a run checks on Spotify.",
    )
    contact: Annotated[StrictStr, AfterValidator(_contact), Allowed("an email address or an http(s) URL")] = Field(
        "",
        validate_default=True,
        description="Where MusicBrainz and ListenBrainz can reach this deployment's operator, sent in the User-Agent release-bot/<version> ( <contact> ); required when enabled. When set, /import listenbrainz: works and imports map artists through MusicBrainz, whether or not the daily signal is enabled.",
    )
    lookahead_days: StrictInt = Field(
        30,
        ge=1,
        le=90,
        description="Days before and after today the daily fetch of fresh releases covers (ListenBrainz serves at most 90).",
    )
    api_base_url: _HttpUrl = Field(
        "https://musicbrainz.org/ws/2", description="MusicBrainz web service (ws/2) base URL."
    )
    listenbrainz_api_base_url: _HttpUrl = Field(
        "https://api.listenbrainz.org", description="ListenBrainz API base URL (the root above /1/)."
    )

    @field_validator("contact", mode="after")
    @classmethod
    def _contact_when_enabled(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("enabled") and not value:
            raise ValueError(
                "required when musicbrainz.enabled is true: an email address or URL where MusicBrainz can reach "
                "you (it goes in the User-Agent)"
            )
        return value


class LastFmSettings(_Section):
    """``[lastfm]``: the Last.fm API key ``/import lastfm:`` reads a user's top artists with (docs/commands.md).

    Optional: without a key ``/import lastfm:`` says the bot has none. The key is a secret (never
    logged, masked by ``release-bot config``).
    """

    api_key: SecretStr = Field(
        SecretStr(""),
        description="API key of a Last.fm API account (https://www.last.fm/api/account/create); enables /import lastfm:. Empty: that import is off.",
    )
    api_base_url: _HttpUrl = Field("https://ws.audioscrobbler.com/2.0", description="Last.fm API 2.0 base URL.")

    @field_validator("api_key", mode="after")
    @classmethod
    def _api_key(cls, value: SecretStr) -> SecretStr:
        return SecretStr(value.get_secret_value().strip())


class ReleaseDaySettings(_Section):
    """``[release_day]``: release-day probing for the guilds that turn it on (``/settings schedule
    release_day:true``; docs/musicdata.md, "Release day"). Needs ``[musicbrainz] enabled``."""

    max_probes: StrictInt = Field(
        4,
        ge=1,
        le=24,
        description="Most Spotify checks of an announced release's artists on its release day (each costs about one request per artist, counted in the day's budget).",
    )
    probe_hours: list[StrictFloat] = Field(
        [0.25, 2.0, 6.0, 12.0],
        min_length=1,
        max_length=24,
        description="When the probes are due: hours after midnight of the release day in the [spotify] market's time zone, ascending, each below 24; a probe time missed is skipped.",
    )
    interval_seconds: StrictFloat = Field(
        60.0, ge=1, le=3600, description="Seconds between two looks for release-day probes that are due."
    )

    @field_validator("probe_hours", mode="after")
    @classmethod
    def _hours(cls, value: list[float]) -> list[float]:
        if any(not 0 <= h < 24 for h in value) or value != sorted(value):
            raise ValueError(f"must be ascending hours from 0 to below 24, got {value!r}")
        return value


LOG_FORMATS: Final = ("text", "json")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(value: str | None) -> str | None:
    if value is None:
        return None
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


_LEVELS_ALLOWED = Allowed("DEBUG, INFO, WARNING, ERROR or CRITICAL")


class LoggingSettings(_Section):
    """``[logging]``: the log's format, level and optional rotated file (docs/operations.md, "Logs").

    ``level`` None: ``--log-level`` or the command's default decides. Secrets are never logged,
    in either format.
    """

    format: Annotated[StrictStr, Allowed('"text" or "json"')] = Field(
        "text",
        description='"text": one line a record, time, level, logger, context fields, message (the traceback below). "json": one JSON object a line with timestamp (UTC), level, logger, message, run_id / guild_id / artist_id / shard where they apply, exc_info — for a log collector.',
    )
    level: Annotated[StrictStr | None, AfterValidator(_log_level), _LEVELS_ALLOWED] = Field(
        None,
        examples=["INFO"],
        description="Lowest level logged. --log-level on the command line wins; unset: INFO for run, WARNING for the other commands.",
    )
    library_level: Annotated[StrictStr, AfterValidator(_log_level), _LEVELS_ALLOWED] = Field(
        "WARNING",
        description="Lowest level of discord.py's and SQLAlchemy's own records, never below level (DEBUG shows gateway events and every SQL statement). They use the same format and handlers.",
    )
    file: Annotated[StrictStr | None, Allowed("a file path")] = Field(
        None,
        examples=["/var/log/release-bot/release-bot.log"],
        description="Also write the log to this file (parent folders created), rotated by size, for hosts without a log collector. Unset: stderr only.",
    )
    max_bytes: StrictInt = Field(
        10_000_000, ge=10_000, le=10_000_000_000, description="Size in bytes at which the log file is rotated."
    )
    backups: StrictInt = Field(
        5, ge=1, le=1000, description="Rotated log files kept (file.1 the newest … file.N the oldest)."
    )

    @field_validator("format", mode="after")
    @classmethod
    def _format(cls, value: str) -> str:
        fmt = value.strip().lower()
        if fmt not in LOG_FORMATS:
            raise ValueError(f'must be "text" or "json", got {value!r}')
        return fmt

    @field_validator("file", mode="after")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be a file path (leave the key out for stderr only)")
        return value.strip() if value is not None else None


def _sentry_dsn(value: SecretStr) -> SecretStr:
    """A Sentry DSN ``http(s)://<key>@<host>/<project>`` with spaces removed, or "" (off). The error
    never shows the value: a DSN is a secret."""
    dsn = value.get_secret_value().strip()
    if dsn:
        parts = urlparse(dsn)
        if (
            parts.scheme not in ("http", "https")
            or not parts.username
            or not parts.hostname
            or not parts.path.strip("/")
        ):
            raise ValueError(
                "must be a Sentry DSN such as https://KEY@HOST/PROJECT_ID (value not shown: it is a secret)"
            )
    return SecretStr(dsn)


class SentrySettings(_Section):
    """``[sentry]``: optional error reporting to Sentry (docs/operations.md, "Error reporting"); off without a DSN.

    Errors the bot logs (``ERROR`` and above, with their traceback) become Sentry events tagged
    with the release ``release-bot@<version>``; no personal data and no secret is sent.
    """

    dsn: Annotated[SecretStr, Allowed("a Sentry DSN https://KEY@HOST/PROJECT_ID, or empty")] = Field(
        SecretStr(""),
        description="Sentry DSN of the project to report errors to (Sentry → Project Settings → Client Keys). Empty: error reporting off.",
    )
    environment: Annotated[StrictStr, Allowed("1 to 64 characters, no slash or newline")] = Field(
        "production", description="Sentry environment the events are filed under (e.g. production, staging)."
    )

    @field_validator("dsn", mode="after")
    @classmethod
    def _dsn(cls, value: SecretStr) -> SecretStr:
        return _sentry_dsn(value)

    @field_validator("environment", mode="after")
    @classmethod
    def _environment(cls, value: str) -> str:
        value = value.strip()
        if not 1 <= len(value) <= 64 or "/" in value or "\n" in value:
            raise ValueError(f"must be 1 to 64 characters without a slash or a newline, got {value!r}")
        return value


class Settings(BaseSettings):
    """The whole configuration, one attribute per section of the file.

    Built by :func:`load_settings` from a file and the environment, or directly in code and tests
    (``Settings(discord=DiscordSettings(token=…), database=DatabaseSettings(url=…))``), where
    nothing of the process environment is read.
    """

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    discord: DiscordSettings = Field(
        default_factory=DiscordSettings,
        description='The Discord bot: its token, the endpoints it talks to, and its shards ("Running several processes" in README.md).',
    )
    spotify: SpotifySettings = Field(
        default_factory=SpotifySettings,
        description="The Spotify app the bot reads releases with, and how many requests it may make: a run and a UTC day are capped, artists not reached go first next time (docs/tracking.md).",
    )
    tracking: TrackingSettings = Field(
        default_factory=TrackingSettings,
        description="Which artists a budgeted run checks first, and how often inactive ones are checked (docs/tracking.md).",
    )
    database: DatabaseSettings = Field(
        default_factory=DatabaseSettings,
        description="Where the bot keeps its state; several processes may share one PostgreSQL database.",
    )
    due_scan: DueScanSettings = Field(
        default_factory=DueScanSettings,
        description="The due scan: how often the bot looks for guilds whose weekly run is due.",
    )
    default_schedule: ScheduleSettings = Field(
        default_factory=ScheduleSettings,
        description="The weekly slot a new guild starts with; each guild changes it with /settings schedule. Friday 12:00 UTC: new music comes out on Fridays at midnight local time around the world, so by noon UTC the week's releases are out in most markets.",
    )
    delivery: DeliverySettings = Field(
        default_factory=DeliverySettings,
        description="What follows a post: direct messages to members who asked for them (paced) and crossposts in announcement channels (retried after Discord's limit of about 10 an hour).",
    )
    coordination: CoordinationSettings = Field(
        default_factory=CoordinationSettings,
        description="Several release-bot processes on one database (docs/multiprocess.md): how often a process proves it is alive, and how long what it holds outlives its last heartbeat before another process takes its work over.",
    )
    release_day: ReleaseDaySettings = Field(
        default_factory=ReleaseDaySettings,
        description="Release-day posting (docs/musicdata.md): a release MusicBrainz announced for today is looked for on Spotify a few times that day and posted as soon as it is listed, to the servers that turned it on with /settings schedule release_day:true. Needs [musicbrainz] enabled.",
    )
    musicbrainz: MusicBrainzSettings = Field(
        default_factory=MusicBrainzSettings,
        description="The free second signal (docs/musicdata.md): followed artists mapped to MusicBrainz, and the release groups ListenBrainz lists for them around today, fetched once a day and matched to the Spotify releases. Opt-in; it never removes an artist from a run. The contact also lets /import read ListenBrainz statistics and map listening histories through MusicBrainz.",
    )
    lastfm: LastFmSettings = Field(
        default_factory=LastFmSettings,
        description="Last.fm, for /import lastfm: (a user's top artists). Off without an API key.",
    )
    http: HttpSettings = Field(
        default_factory=HttpSettings,
        description="The operations endpoints (docs/operations.md): Prometheus metrics and the liveness and readiness checks, served by each process on its own port. Off unless port is set.",
    )
    logging: LoggingSettings = Field(
        default_factory=LoggingSettings,
        description="The log (docs/operations.md, Logs): text or JSON lines on stderr, optionally also a file rotated by size; the bot's, discord.py's and SQLAlchemy's records alike, with run_id, guild_id, artist_id and shard where they apply. Secrets are never logged.",
    )
    sentry: SentrySettings = Field(
        default_factory=SentrySettings,
        description="Optional error reporting to Sentry (docs/operations.md, Error reporting): errors the bot logs, tagged release-bot@<version>, without personal data or secrets. Off without a DSN.",
    )

    @property
    def database_url(self) -> str:
        """The database URL (``[database] url``, or ``DATABASE_URL``)."""
        return self.database.url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the keyword arguments: building ``Settings(…)`` reads no environment variable, no
        ``.env`` file and no secrets directory (:func:`load_settings` applies :data:`ENVIRONMENT`)."""
        return (init_settings,)


class EnvironmentOverrides(PydanticBaseSettingsSource):
    """The settings source of :data:`ENVIRONMENT`: ``{"discord": {"token": …}, …}`` for each variable
    set to a non-blank value in ``environ`` (surrounding spaces removed)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The overrides of section ``field_name`` (a dict, or None when none is set); complex: True."""
        table = {
            key: value
            for var, (section, key) in ENVIRONMENT.items()
            if section == field_name and (value := self.environ.get(var, "").strip())
        }
        return (table or None), field_name, True

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            table, key, _ = self.get_field_value(field, name)
            if table is not None:
                values[key] = table
        return values


def _read_file(path: str | Path | None) -> dict[str, Any]:
    """The TOML file's tables; ``{}`` when ``path`` is None or no file is there."""
    if path is None:
        return {}
    try:
        return TomlConfigSettingsSource(Settings, toml_file=Path(path))()
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read ({exc.strerror})") from None


def _sections() -> dict[str, type[_Section]]:
    """``{"discord": DiscordSettings, …}`` in file order."""
    return {
        name: field.annotation
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, _Section)
    }


def _closest(name: str, known: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _refuse_unknown(data: Mapping[str, Any]) -> None:
    """Raise :class:`UnknownKeyError` for the first unknown or renamed section or key of ``data``."""
    sections = _sections()
    for section, table in data.items():
        if section in RENAMED:
            raise UnknownKeyError(section, f"section [{section}] was renamed: use {RENAMED[section]}")
        if section not in sections:
            guess = _closest(section, sections)
            if not isinstance(table, dict):
                where = f"[{guess}]" if guess else "[" + "], [".join(sections) + "]"
                raise UnknownKeyError(
                    section, f"unknown key {section} — every key belongs in a section such as {where}"
                )
            hint = f"did you mean [{guess}]?" if guess else "sections: [" + "], [".join(sections) + "]"
            raise UnknownKeyError(section, f"unknown section [{section}] — {hint}")
        if not isinstance(table, dict):
            continue  # refused by validation: "must be a table"
        known = sections[section].model_fields
        for key in table:
            if key in known:
                continue
            elsewhere = [other for other, model in sections.items() if key in model.model_fields]
            guess = f"{elsewhere[0]}.{key}" if elsewhere else None
            if guess is None and (near := _closest(key, known)) is not None:
                guess = f"{section}.{near}"
            hint = f"did you mean {guess}?" if guess else f"keys of [{section}]: {', '.join(known)}"
            raise UnknownKeyError(f"{section}.{key}", f"unknown key {section}.{key} — {hint}")


def _with_overrides(data: dict[str, Any], overrides: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """``data`` with each table of ``overrides`` merged into its section, key by key (``overrides``
    win); a section of ``data`` that is not a table is kept, for validation to refuse."""
    merged = dict(data)
    for section, table in overrides.items():
        current = merged.get(section, {})
        if isinstance(current, dict):
            merged[section] = {**current, **table}
    return merged


def allowed(key: str, field: FieldInfo) -> str:
    """What ``field`` (named ``key``) accepts, in words (``"a whole number from 1 to 64"``): its
    :class:`Allowed` text, or what its type and bounds say."""
    bounds: dict[str, object] = {}
    for item in field.metadata:
        if isinstance(item, Allowed):
            return item.text
        if isinstance(item, annotated_types.Ge):
            bounds["ge"] = item.ge
        elif isinstance(item, annotated_types.Gt):
            bounds["gt"] = item.gt
        elif isinstance(item, annotated_types.Le):
            bounds["le"] = item.le
    kind = _base_type(field)
    if kind is bool:
        return "true or false"
    if kind is int:
        return f"a whole number from {bounds['ge']} to {bounds['le']}"
    if kind is float:
        what = "a number of seconds" if key.endswith("_seconds") else "a number"
        if "gt" in bounds:
            return f"{what} above {bounds['gt']:g} and at most {bounds['le']:g}"
        return f"{what} from {bounds['ge']:g} to {bounds['le']:g}"
    return "a string"


def _base_type(field: FieldInfo) -> object:
    """``field``'s type without ``| None`` and ``Annotated`` metadata (``StrictInt | None`` → ``int``)."""
    kind = field.annotation
    if get_origin(kind) in (Union, types.UnionType):
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    return get_args(kind)[0] if get_origin(kind) is Annotated else kind


def _config_error(exc: ValidationError) -> ConfigError:
    """The first error of ``exc`` as one line naming the key."""
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    if len(loc) == 1:
        return ConfigError(loc[0], f"must be a table, e.g. [{loc[0]}]")
    section, key = loc[0], loc[1]
    field = _sections()[section].model_fields[key]
    if error["type"] == "value_error":
        return ConfigError(f"{section}.{key}", str(error["ctx"]["error"]))
    if _base_type(field) is SecretStr:  # never echo what was given for a secret
        return ConfigError(f"{section}.{key}", f"must be {allowed(key, field)}")
    return ConfigError(f"{section}.{key}", f"must be {allowed(key, field)}, got {error['input']!r}")


def load_settings(path: str | Path | None, environ: Mapping[str, str], *, require_secrets: bool = True) -> Settings:
    """Read the TOML file at ``path`` (None, or a path with no file, when everything comes from the
    environment and the defaults), then :data:`ENVIRONMENT` from ``environ``, which win over the file.

    ``require_secrets=False`` lets the token, client id and client secret be missing (empty):
    ``check``, ``migrate``, ``config`` and the demo. Raises :class:`ConfigError` (one line naming the
    key) for a file that is not TOML, an unknown or renamed section or key (:class:`UnknownKeyError`),
    and any missing or invalid value.
    """
    data = _read_file(path)
    _refuse_unknown(data)
    # Absent sections as empty tables, so every key is validated in place and an error names it.
    data = {name: {} for name in _sections()} | data
    data = _with_overrides(data, EnvironmentOverrides(Settings, environ)())
    loading = _LOADING.set(_Loading(require_secrets=require_secrets))
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise _config_error(exc) from None
    finally:
        _LOADING.reset(loading)


@dataclass(frozen=True)
class KeyInfo:
    """One key as the reference and the example file describe it.

    ``type``: "whole number", "number", "true or false", "string", "secret string" or "list of
    whole numbers"; ``default``: the value as written in TOML (``day`` → ``"friday"``), None when
    the key is unset by default (then ``example`` is a value to show); ``env``: the variable that
    overrides it, if any.
    """

    section: str
    key: str
    type: str
    default: object
    example: object
    allowed: str
    env: str | None
    secret: bool
    description: str


@dataclass(frozen=True)
class SectionInfo:
    """One ``[section]``: its ``name``, ``description`` and keys, in declaration order."""

    name: str
    description: str
    keys: tuple[KeyInfo, ...]


def _type_name(field: FieldInfo, default: object) -> str:
    """The TOML type of ``field``: of its default as written (``day`` → a string), else of its annotation."""
    kind = _base_type(field) if default is None or isinstance(default, SecretStr) else type(default)
    names: dict[object, str] = {bool: "true or false", int: "whole number", float: "number", SecretStr: "secret string"}
    if get_origin(kind) is tuple:
        return "list of whole numbers"
    return names.get(kind, "string")


def schema() -> tuple[SectionInfo, ...]:
    """Every section and key of :class:`Settings`, in file order, with defaults as TOML values."""
    defaults = Settings().model_dump()
    result = []
    for name, model in _sections().items():
        keys = []
        for key, field in model.model_fields.items():
            default = defaults[name][key]
            keys.append(
                KeyInfo(
                    section=name,
                    key=key,
                    type=_type_name(field, default),
                    default=default.get_secret_value() if isinstance(default, SecretStr) else default,
                    example=field.examples[0] if field.examples else None,
                    allowed=allowed(key, field),
                    env=_env_of(name, key),
                    secret=_base_type(field) is SecretStr,
                    description=field.description or "",
                )
            )
        result.append(SectionInfo(name, Settings.model_fields[name].description or "", tuple(keys)))
    return tuple(result)
