"""ORM models: the bot's memory.

All timestamps are timezone-aware UTC ``datetime`` values (stored through
:class:`UTCDateTime`, which also normalises what SQLite hands back).
Discord ids (guild, channel, message) are 64-bit snowflakes stored as ``BigInteger``.
Spotify ids are the 22-character base-62 ids of the Web API.

The design is explained in ``docs/design.md``; in short:

* ``Artist`` / ``ArtistRelease`` / ``Release`` are the shared cache of what Spotify
  said, with the first-seen time of every (artist, release) link.
* ``Follow`` says which guild follows which artist since when.
* ``Delivery`` is the per-guild ledger and the single source of truth for
  "already posted": one row per (guild, release), unique.
* ``Run`` is the run history; ``SpotifyState`` holds the quota cooldown.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A ``DateTime`` that only accepts aware datetimes and always returns UTC-aware ones.

    SQLite has no time zone support, so values are stored as naive UTC and made
    aware again on load. Raises ``ValueError`` for a naive datetime on write.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every release-bot table."""

    if TYPE_CHECKING:
        # Every model declares ``__tablename__``, so its ``__table__`` is a ``Table`` (SQLAlchemy
        # types it as any ``FromClause``, which may also be a join or a subquery).
        __table__: ClassVar[Table]


DEFAULT_RELEASE_TYPES = ("album", "single", "ep", "compilation")
"""The release types a new guild posts (``guilds.album_groups``): everything but appearances. The same
as ``bot.delivery.types.DEFAULT_RELEASE_TYPES`` (storage imports nothing from bot/; a test checks they agree)."""


class Guild(Base):
    """A Discord guild (server) using the bot.

    ``schedule_day`` is 0=Monday … 6=Sunday; ``schedule_time`` is local "HH:MM" in
    ``timezone`` (an IANA name). ``next_due_at`` (UTC) is when its weekly run is due.
    """

    __tablename__ = "guilds"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    channel_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    schedule_day: Mapped[int] = mapped_column(Integer)
    schedule_time: Mapped[str] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(64))
    next_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set when posting to the channel failed with 403/404; cleared on success.
    channel_problem: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Release types this guild wants posted (album, single, ep, compilation, appears_on:
    # bot.delivery.types); the column keeps its first name, from when they were Spotify's album groups.
    album_groups: Mapped[list[str]] = mapped_column(JSON, default=lambda: list(DEFAULT_RELEASE_TYPES))
    # /settings filters: {"skip": ["remix", "live", "sped_up", "instrumental"], "mute_appearances": [artist ids]}
    # (bot.delivery.planner.FILTER_KEYWORDS); a release filtered out is recorded as skipped, never posted.
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # /settings mention: the role mentioned by this guild's posts (None = nobody is mentioned).
    mention_role_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # /settings publish: crosspost (publish) the bot's posts in an announcement channel.
    publish: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # /settings upcoming: post releases MusicBrainz announces ahead (docs/musicdata.md).
    upcoming: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # /settings schedule release_day: probe an announced release's artists on its release day.
    release_day: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The process running this guild's due weekly run, and until when its lease holds (renewed
    # by its heartbeat; another process takes the guild over after expiry): storage/coordination.py.
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A delivery Discord failed (5xx, a long or global 429, a network error): when the due scan tries
    # the pending posts again (NULL: nothing waits), failed deliveries in a row (the back-off step; 0
    # after a success) and what Discord answered (bot.delivery.deliverer; migration 0009).
    delivery_retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    delivery_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_delivery_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    follows: Mapped[list[Follow]] = relationship(back_populates="guild", cascade="all, delete-orphan")


class Artist(Base):
    """A Spotify artist followed by at least one guild (or once followed).

    ``baselined_at`` is set once the silent baseline (what was already out) is
    recorded; ``last_checked_at`` is the last successful check; ``last_error`` the
    reason of the last failed check (cleared on success).
    """

    __tablename__ = "artists"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    image_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    baselined_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Per album group state of the last check: {"album": {"total": 12, "newest": [ids…]}, …}
    group_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Release date (UTC midnight) of the newest release known for this artist: drives priority and economy mode.
    last_release_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # How many runs in a row this artist was due but not checked (budget, cooldown): the starvation guard.
    runs_skipped: Mapped[int] = mapped_column(Integer, default=0)
    # When the tracked listing was last read whole (the baseline, then the rotating exact re-check
    # that turns a missed release into a bounded delay: docs/tracking.md).
    exact_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The process checking this artist now and until when (artist-level claim: one fetch per run
    # across processes).
    claim_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claim_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    follows: Mapped[list[Follow]] = relationship(back_populates="artist")


class Follow(Base):
    """Guild ``guild_id`` follows artist ``artist_id`` since ``followed_at`` (UTC)."""

    __tablename__ = "follows"

    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    artist_id: Mapped[str] = mapped_column(ForeignKey("artists.id"), primary_key=True, index=True)
    followed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    guild: Mapped[Guild] = relationship(back_populates="follows")
    artist: Mapped[Artist] = relationship(back_populates="follows")


class Release(Base):
    """A Spotify album object (album, single, compilation) as first seen.

    ``artists`` is the album's artist list ``[{"id": ..., "name": ...}, …]``.
    ``release_date`` is the raw Spotify string (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``)
    and ``release_date_precision`` is ``year`` / ``month`` / ``day``.
    """

    __tablename__ = "releases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    album_type: Mapped[str] = mapped_column(String(32))
    artists: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    release_date: Mapped[str] = mapped_column(String(10))
    release_date_precision: Mapped[str] = mapped_column(String(5))
    total_tracks: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    # Labels from tracking, e.g. [{"kind": "carries_singles", "new_tracks": 3, "known_tracks": 2},
    # {"kind": "back_catalogue"}, {"kind": "deluxe_of", "release_id": ...}, {"kind": "remix_of", ...}].
    labels: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    upc: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tracks_fetched: Mapped[bool] = mapped_column(Boolean, default=False)
    # Another edition of a release known before it (a clean/explicit twin, a re-issue under a new
    # id: bot.tracking.editions): never announced on its own, only folded into that one's post.
    folded_into: Mapped[str | None] = mapped_column(String(32), nullable=True)

    tracks: Mapped[list[ReleaseTrack]] = relationship(
        cascade="all, delete-orphan", order_by="ReleaseTrack.position", lazy="raise"
    )


class ReleaseTrack(Base):
    """Track ``position`` (0-based) of release ``release_id``: ``name``, ``duration_ms`` (ms), ISRC when known.

    Filled by ``GET /albums/{id}`` (simplified tracks carry no ISRC; ``isrc`` stays None unless fetched).
    """

    __tablename__ = "release_tracks"

    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    name: Mapped[str] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    isrc: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)


class ArtistRelease(Base):
    """Release ``release_id`` was listed under artist ``artist_id`` in ``album_group``.

    ``first_seen_at`` is when this link was first stored; ``baseline`` is true
    when it was recorded by the artist's silent baseline (never announced).
    """

    __tablename__ = "artist_releases"

    artist_id: Mapped[str] = mapped_column(ForeignKey("artists.id"), primary_key=True)
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id"), primary_key=True, index=True)
    album_group: Mapped[str] = mapped_column(String(16))
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    release: Mapped[Release] = relationship()


class Delivery(Base):
    """The per-guild delivery ledger: release ``release_id`` was posted to guild ``guild_id``.

    A row is inserted (``status="claimed"``) before sending and confirmed
    (``status="sent"``, ``message_id``) after. Unique on (guild_id, release_id):
    the single source of truth for "already posted". ``folded_into`` names the
    release whose announcement covered this one (a clean/explicit twin).
    """

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("guild_id", "release_id", name="uq_delivery_guild_release"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), index=True)
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id"))
    status: Mapped[str] = mapped_column(String(16), default="claimed")
    channel_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    folded_into: Mapped[str | None] = mapped_column(String(32), nullable=True)
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The process that claimed the row: only a dead owner's unconfirmed claims are settled by another.
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Where the release went: "message" (a message in a text or announcement channel, possibly a
    # digest of several releases) or "forum" (a forum post of its own: message_id is the post's
    # thread id, which equals its starter message's id). None on rows from before destinations.
    destination: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # Crossposting in an announcement channel (/settings publish): None (not asked), "pending"
    # (to publish, not before publish_after), "done", or "failed" (Discord refused for good).
    publish_state: Mapped[str | None] = mapped_column(String(8), nullable=True)
    publish_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Route(Base):
    """Guild ``guild_id`` sends a release type or an artist's releases to ``channel_id``.

    ``kind``: ``"type"`` (``key`` is album, single, ep, compilation or appears_on) or ``"artist"``
    (``key`` is a Spotify artist id). An artist route beats a type route, which beats the guild's
    default channel; each release still goes to exactly one destination per guild.
    """

    __tablename__ = "routes"

    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[int] = mapped_column(BigInteger)


class Member(Base):
    """How member ``user_id`` of guild ``guild_id`` is notified of the artists they subscribed to.

    ``mode``: ``"mention"`` (mentioned in the post) or ``"dm"`` (a direct message per release).
    ``dm_closed_at``: when Discord last refused a DM (error 50007; the member was switched to
    ``mention``); ``dm_notice_pending``: the member is still to be told so, privately, at their
    next command.
    """

    __tablename__ = "members"

    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    mode: Mapped[str] = mapped_column(String(8), default="mention", server_default="mention")
    dm_closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dm_notice_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Subscription(Base):
    """Member ``user_id`` of guild ``guild_id`` asked to be notified of artist ``artist_id``'s releases."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_guild_artist", "guild_id", "artist_id"),)

    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    artist_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MentionPost(Base):
    """A follow-up message carrying mentions that did not fit in a post (Discord: content ≤ 2,000
    characters, ≤ 100 user ids in ``allowed_mentions``).

    ``post_key``: the post it belongs to (its nonce); ``part``: 1, 2, … in order. Claimed
    (``status="claimed"``) before sending and confirmed (``"sent"``, ``message_id``) after, unique
    per (guild, post, part): each part is posted once. ``content`` is stored at claim time so an
    unconfirmed claim is settled by finding that exact message in the channel.
    """

    __tablename__ = "mention_posts"
    __table_args__ = (UniqueConstraint("guild_id", "post_key", "part", name="uq_mention_post_part"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"))
    post_key: Mapped[str] = mapped_column(String(64))
    part: Mapped[int] = mapped_column(Integer)
    channel_id: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[str] = mapped_column(Text)
    user_ids: Mapped[list[int]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DmDelivery(Base):
    """The direct-message ledger: release ``release_id`` sent to member ``user_id``, once.

    Unique per (user, release), whichever guild asked first (``guild_id``). ``status``:
    ``pending`` (to send, not before ``next_attempt_at``), ``claimed`` (being sent by ``owner``),
    ``sent`` (``message_id``), ``closed`` (Discord refused: DMs closed, error 50007) or ``gone``
    (Unknown User/Member: the member's subscriptions were removed).
    """

    __tablename__ = "dm_deliveries"
    __table_args__ = (
        UniqueConstraint("user_id", "release_id", name="uq_dm_user_release"),
        Index("ix_dm_deliveries_status", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id"))
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Run(Base):
    """One tracking-and-delivery run.

    ``trigger``: ``schedule`` | ``refresh`` | ``check`` | ``release_day``; ``status``: ``running`` |
    ``ok`` | ``partial`` | ``failed``. ``guild_id`` is set for a ``/refresh``.
    ``failed_artists`` is a list of Spotify artist ids that could not be checked.
    """

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(16))
    guild_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    artists_due: Mapped[int] = mapped_column(Integer, default=0)
    artists_checked: Mapped[int] = mapped_column(Integer, default=0)
    artists_failed: Mapped[int] = mapped_column(Integer, default=0)
    failed_artists: Mapped[list[str]] = mapped_column(JSON, default=list)
    spotify_requests: Mapped[int] = mapped_column(Integer, default=0)
    releases_found: Mapped[int] = mapped_column(Integer, default=0)
    releases_posted: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Instrumentation: {"requests_by_endpoint": {...}, "lower_bound": L, "pages_skipped": n,
    # "rate_limited": n, "phase_seconds": {"plan": s, "track": s, "label": s, "deliver": s},
    # "budget": n, "carried_over": n}
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The process running it: only a dead owner's ``running`` run is marked interrupted.
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)


class SpotifyState(Base):
    """Single row (id=1): the Spotify quota cooldown that survives restarts.

    ``cooldown_until`` (UTC) — no Spotify request may be made before it.
    """

    __tablename__ = "spotify_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cooldown_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cooldown_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Per-day request budget accounting: requests made on UTC day ``budget_day`` ("YYYY-MM-DD").
    budget_day: Mapped[str | None] = mapped_column(String(10), nullable=True)
    budget_day_requests: Mapped[int] = mapped_column(Integer, default=0)


class BotState(Base):
    """Small key/value facts the bot keeps between starts (e.g. ``commands_hash``: the last synced command set)."""

    __tablename__ = "bot_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Process(Base):
    """A running ``release-bot`` process (issue 8): ``id`` (``host:pid:random``), its shards, its heartbeat (UTC).

    A process whose ``heartbeat_at`` is older than the lease time is dead: what it owned
    (guild leases, artist claims, named leases, ledger claims, runs) may be taken over.
    """

    __tablename__ = "processes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    shard_ids: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Lease(Base):
    """A named lease held by process ``owner`` until ``expires_at`` (UTC), e.g. ``refresh:<guild id>``.

    Taken with one ``INSERT … ON CONFLICT DO UPDATE … WHERE expired or mine`` statement, so
    two processes never both hold it (storage/coordination.py).
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# --- the free second signal: MusicBrainz and ListenBrainz (docs/musicdata.md) ---------------


class MusicBrainzArtist(Base):
    """The mapping of followed Spotify artist ``spotify_id`` to MusicBrainz: when it was last tried.

    Its MusicBrainz artist ids (none: unmapped) are :class:`MusicBrainzArtistLink` rows.
    ``attempted_at``: the last lookup that got an answer; ``mapped_at``: the last one that found
    the artist (None while unmapped); ``unmapped_attempts``: answers in a row that found nothing
    (0 once mapped), which set ``next_attempt_at`` (weekly, then monthly: bot.musicdata.signal).
    """

    __tablename__ = "musicbrainz_artists"

    spotify_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    mapped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unmapped_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class MusicBrainzArtistLink(Base):
    """Spotify artist ``spotify_id`` is MusicBrainz artist ``mbid`` (through MusicBrainz's URL
    relationship to ``https://open.spotify.com/artist/{spotify_id}``; rarely two MBIDs, all kept)."""

    __tablename__ = "musicbrainz_artist_links"

    spotify_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mbid: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)


class MusicBrainzReleaseGroup(Base):
    """A MusicBrainz release group of a followed, mapped artist, as ListenBrainz's fresh releases list it.

    ``release_date``: the group's first-release date (UTC calendar day); ``date_changes``: every
    change seen, ``[{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD", "at": ISO 8601 UTC}]`` (a later
    notice says "postponed"). ``first_seen_at`` / ``last_seen_at``: the first and the latest daily
    fetch that listed it; ``gone_at``: set when a fetch whose window covers its date no longer
    lists it (cleared when it comes back). ``barcodes``: the non-empty barcodes of its releases
    (MusicBrainz ``GET /release?release-group=``), read at ``barcodes_checked_at``.
    ``spotify_release_id``: the Spotify release it was matched to (``match_method`` ``"upc"`` or
    ``"title"``, at ``matched_at``); ``missed_at``: when its date had passed long enough with no
    match (bot.musicdata.signal.MISS_AFTER_DAYS).
    """

    __tablename__ = "musicbrainz_release_groups"

    mbid: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    artist_credit_name: Mapped[str] = mapped_column(Text)
    artist_mbids: Mapped[list[str]] = mapped_column(JSON)
    primary_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    secondary_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    release_date: Mapped[dt.date] = mapped_column(Date, index=True)
    release_mbid: Mapped[str] = mapped_column(String(36))
    caa_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    caa_release_mbid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    gone_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    date_changes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    barcodes: Mapped[list[str]] = mapped_column(JSON, default=list)
    barcodes_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    spotify_release_id: Mapped[str | None] = mapped_column(ForeignKey("releases.id"), nullable=True)
    match_method: Mapped[str | None] = mapped_column(String(8), nullable=True)
    matched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    missed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class MusicBrainzReleaseGroupArtist(Base):
    """Release group ``release_group_mbid`` is by followed Spotify artist ``spotify_id`` (one of its
    credited MusicBrainz artists is mapped to it), as of the latest fetch that listed it."""

    __tablename__ = "musicbrainz_release_group_artists"

    release_group_mbid: Mapped[str] = mapped_column(
        ForeignKey("musicbrainz_release_groups.mbid", ondelete="CASCADE"), primary_key=True
    )
    spotify_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class RateSlot(Base):
    """A rate limit shared by every process: the next free request slot ``next_at`` of ``name``
    (epoch seconds, UTC), taken with one ``UPDATE … SET next_at = max(next_at, now) + interval
    RETURNING`` (storage.musicdata.take_rate_slot)."""

    __tablename__ = "rate_slots"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_at: Mapped[float] = mapped_column(Double)


class UpcomingPost(Base):
    """The announcement ledger: release group ``release_group_mbid`` announced in guild ``guild_id``, once.

    Claimed (``status="claimed"``, ``owner``, ``claimed_at``) before the message is sent, confirmed
    (``"posted"``, ``message_id``; in a forum ``thread_id`` too) after; ``"skipped"`` when the guild's
    types, filters or routes leave it out. ``content`` is stored at claim time so an unconfirmed
    claim is settled by finding that message. ``shown_date`` / ``shown_state`` (announced, postponed,
    gone) are what the message says now: a date change or a disappearance edits it once.
    """

    __tablename__ = "upcoming_posts"

    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    release_group_mbid: Mapped[str] = mapped_column(
        ForeignKey("musicbrainz_release_groups.mbid", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    destination: Mapped[str] = mapped_column(String(8), default="message", server_default="message")
    status: Mapped[str] = mapped_column(String(10), index=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    thread_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    posted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    shown_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    shown_state: Mapped[str] = mapped_column(String(10), default="announced", server_default="announced")
    edited_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReleaseDayProbe(Base):
    """Release-day probing of release group ``release_group_mbid`` on ``release_day`` (its date).

    ``probes``: probes made (at most a few); ``requests``: the Spotify requests they cost (counted
    in the day's budget too); ``next_probe_at``: when the next is due (UTC); ``found_at`` /
    ``spotify_release_id``: when a probe found Spotify listing it (no more probes after that).
    """

    __tablename__ = "release_day_probes"

    release_group_mbid: Mapped[str] = mapped_column(
        ForeignKey("musicbrainz_release_groups.mbid", ondelete="CASCADE"), primary_key=True
    )
    release_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    probes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_probe_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_probe_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    found_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    spotify_release_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
