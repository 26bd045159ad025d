"""``/refresh``, ``/history``, ``/preview`` and ``/status``: runs on demand and what the bot did
and will do for a guild (no discord import, no SQL).

Every call is scoped to one guild id: a guild sees its own refreshes and the weekly runs, with
what they posted to (and skipped for) that guild only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.coordination.coordinator import Coordinator
from bot.delivery.planner import Announcement, GuildFilters, fold_twins, plan_pending
from bot.delivery.render import render_messages, role_mention
from bot.scheduling.runner import Runner, RunnerStopping, RunSummary
from bot.services.errors import UserError
from bot.services.guild_settings import Destinations, GuildSettingsService, posted_groups
from bot.services.text import DAY_NAMES, RELEASE_TYPE_NAMES
from storage import guilds, runs, spotify_state
from storage.db import Database
from storage.models import Run
from storage.routes import GuildRoutes

__all__ = [
    "REFRESH_RUNNING_TEXT",
    "SHUTTING_DOWN_TEXT",
    "GuildStatus",
    "HistoryRow",
    "Preview",
    "PreviewPost",
    "RunService",
    "duration_text",
    "waiting_text",
]

REFRESH_RUNNING_TEXT = "A refresh is already running in this server; its reply will show the result."
SHUTTING_DOWN_TEXT = "The bot is restarting right now; try `/refresh` again in a minute."


def duration_text(seconds: float) -> str:
    """A wait, rounded for people: ``"45 s"``, ``"10 min"``, ``"2 h"``, ``"1 h 30 min"`` (never negative)."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" + (f" {rest} min" if rest else "")


def waiting_text(pending: int, failure: str | None, retry_at: dt.datetime, now: dt.datetime) -> str:
    """What waits after Discord failed a post, e.g. ``"3 releases are waiting to be posted (Discord
    failed: 503); next try in 10 min"`` (``retry_at``, ``now``: aware UTC)."""
    what = f"{pending} release{'s are' if pending != 1 else ' is'} waiting to be posted"
    why = f" ({failure})" if failure else ""
    return f"{what}{why}; next try in {duration_text((retry_at - now).total_seconds())}"


@dataclass(frozen=True)
class PreviewPost:
    """The part of the next post that goes to one channel: ``channel_id`` (None: no route and no
    default channel, so these wait), its ``announcements`` and their ``messages`` (embed dicts per
    message, as the deliverer packs them)."""

    channel_id: int | None
    announcements: list[Announcement]
    messages: list[list[dict[str, object]]]


@dataclass(frozen=True)
class Preview:
    """What ``/preview`` shows: the guild's next post as it would be sent now (nothing is written).

    ``announcements``: what it announces, in order; ``posts``: the same split by destination
    (:func:`bot.delivery.planner.destination_of`: artist route, type route, default channel), in the
    order of their first announcement; ``skipped``: reason → count of pending releases that will
    never be posted (``type``, ``muted``, ``block_artist``, ``block_title`` or a filter kind);
    ``mention``: the message content mentioning the guild's role (None when no role is set);
    ``channel_id``: the default channel.
    """

    channel_id: int | None
    announcements: list[Announcement]
    posts: list[PreviewPost]
    skipped: dict[str, int]
    mention: str | None


@dataclass(frozen=True)
class HistoryRow:
    """One ``/history`` line: a ``Run`` and what it posted to (and skipped for) this guild."""

    run: Run
    posted: int
    skipped: int

    @property
    def coverage(self) -> float:
        """Share of due artists checked (1.0 when none were due)."""
        due = self.run.artists_due or 0
        return 1.0 if not due else (self.run.artists_checked or 0) / due


@dataclass(frozen=True)
class GuildStatus:
    """What ``/status`` shows for one guild (times are UTC). ``waiting``: the posts Discord failed that wait
    for a retry (:func:`waiting_text`), None when none do."""

    channel_id: int | None
    channel_problem: str | None
    follows: int
    schedule_day: int
    schedule_time: str
    timezone: str
    next_due_at: dt.datetime
    last_run: Run | None
    cooldown_until: dt.datetime | None
    cooldown_reason: str | None
    album_groups: tuple[str, ...] = ("album", "single", "ep", "compilation")
    mention_role_id: int | None = None
    filters: GuildFilters = field(default_factory=GuildFilters)
    publish: bool = False
    routes: GuildRoutes = field(default_factory=GuildRoutes)
    artist_names: dict[str, str] = field(default_factory=dict)
    release_day: bool = False
    waiting: str | None = None

    @property
    def album_groups_text(self) -> str:
        """E.g. ``"Albums, Singles, EPs"`` (in the order of ``RELEASE_TYPE_NAMES``)."""
        return ", ".join(name for t, name in RELEASE_TYPE_NAMES.items() if t in self.album_groups) or "none"

    @property
    def destinations(self) -> Destinations:
        """The default channel, routes and publish setting as :class:`Destinations`."""
        return Destinations(self.channel_id, self.routes, self.publish, self.artist_names, self.album_groups)

    @property
    def schedule_text(self) -> str:
        """E.g. ``"Fridays at 12:00 (Europe/Berlin)"``."""
        return f"{DAY_NAMES[self.schedule_day]}s at {self.schedule_time} ({self.timezone})"


class RunService:
    """Runs on demand and the run history of a guild.

    ``db``: the opened store; ``guild_settings``: the guild rows; ``runner``: the one run path
    (the weekly run uses it too); ``coordinator``: this process's leases (one ``/refresh`` per
    guild across processes); ``clock``: aware UTC now.
    """

    def __init__(
        self,
        db: Database,
        guild_settings: GuildSettingsService,
        runner: Runner,
        coordinator: Coordinator,
        *,
        clock: Clock,
    ) -> None:
        self.db = db
        self.guild_settings = guild_settings
        self.runner = runner
        self.coordinator = coordinator
        self.clock = clock
        self._refreshing: set[int] = set()

    def refresh_running(self, guild_id: int) -> bool:
        """True while a ``/refresh`` of this guild is in progress in this process."""
        return guild_id in self._refreshing

    @property
    def run_in_progress(self) -> bool:
        """True while any run (weekly, another server's refresh, a check) holds this process's runner."""
        return self.runner.running

    async def refresh(self, guild_id: int, progress: Callable[[int, int], object] | None = None) -> RunSummary:
        """Check this guild's artists now and post what is new (the same path as the weekly run).

        ``progress(checked, total)`` is called as artists are checked (see ``Runner.run``).
        When another run holds the runner (the weekly run, another server's refresh) this
        one waits for it and then runs. Raises :class:`UserError` at once when a refresh of
        this guild is already running (in any bot process: the named lease ``refresh:<guild id>``),
        when the guild has no channel or follows nobody.
        """
        if guild_id in self._refreshing:
            raise UserError(REFRESH_RUNNING_TEXT)
        if self.runner.stopping:
            raise UserError(SHUTTING_DOWN_TEXT)
        self._refreshing.add(guild_id)  # before any await: a second call in this process is refused at once
        try:
            lease = f"refresh:{guild_id}"
            if not await self.coordinator.try_lease(lease):
                raise UserError(REFRESH_RUNNING_TEXT)
            try:
                return await self._refresh(guild_id, progress)
            finally:
                await self.coordinator.release(lease)
        finally:
            self._refreshing.discard(guild_id)

    async def _refresh(self, guild_id: int, progress: Callable[[int, int], object] | None) -> RunSummary:
        guild = await self.guild_settings.ensure_guild(guild_id)
        if guild.channel_id is None:
            raise UserError("Choose where releases go first: `/settings channel`.")
        async with self.db.transaction() as session:
            count = await guilds.follow_count(session, guild_id)
        if not count:
            raise UserError("This server follows no artists yet. Add one with `/follow`.")
        try:
            if progress is None:
                return await self.runner.run("refresh", [guild_id])
            return await self.runner.run("refresh", [guild_id], progress=progress)
        except RunnerStopping:
            raise UserError(SHUTTING_DOWN_TEXT) from None

    async def history(self, guild_id: int, limit: int = 10) -> list[HistoryRow]:
        """The last ``limit`` runs that concern this guild, newest first: its refreshes and the weekly runs.

        Each with what it posted to this guild (announcements, twins not counted) and
        skipped for it (types not wanted, filters), from the ledger. ``check`` runs are left out.
        """
        await self.guild_settings.ensure_guild(guild_id)
        async with self.db.transaction() as session:
            rows = await runs.guild_history(session, guild_id, limit)
        return [HistoryRow(r.run, r.posted, r.skipped) for r in rows]

    async def preview(self, guild_id: int) -> Preview:
        """What the guild's next post would contain now: pending releases after release types and filters,
        folded, sent to their destinations and rendered as the deliverer would send them. Reads only
        (no ledger row is written)."""
        guild = await self.guild_settings.ensure_guild(guild_id)
        destinations = await self.guild_settings.destinations(guild_id)
        async with self.db.transaction() as session:
            plan = await plan_pending(session, guild_id)
        announcements = fold_twins(plan.wanted)
        skipped: dict[str, int] = {}
        for _release, reason in plan.skipped:
            skipped[reason] = skipped.get(reason, 0) + 1
        posts = [
            PreviewPost(channel_id, group, render_messages(group))
            for channel_id, group in plan.by_destination(announcements, destinations.routes, destinations.channel_id)
        ]
        mention, _allowed = role_mention(guild.mention_role_id)
        return Preview(destinations.channel_id, announcements, posts, skipped, mention)

    async def status(self, guild_id: int) -> GuildStatus:
        """Channel, routes and publishing, follows, schedule and next run, last run touching this guild,
        the posts waiting for a retry after Discord failed them, and any Spotify cooldown (one that has
        ended is not shown)."""
        guild = await self.guild_settings.ensure_guild(guild_id)
        destinations = await self.guild_settings.destinations(guild_id)
        waiting = None
        async with self.db.transaction() as session:
            follows = await guilds.follow_count(session, guild_id)
            last_run = await runs.last_run_for_guild(session, guild_id)
            cooldown_until, cooldown_reason = await spotify_state.get_cooldown(session)
            retry = await guilds.delivery_retry(session, guild_id)
            if retry is not None and retry.retry_at is not None:
                pending = len(fold_twins((await plan_pending(session, guild_id)).wanted))
                waiting = waiting_text(pending, retry.error, retry.retry_at, self.clock())
        if cooldown_until is not None and cooldown_until <= self.clock():
            cooldown_until = cooldown_reason = None
        return GuildStatus(
            channel_id=guild.channel_id,
            channel_problem=guild.channel_problem,
            follows=follows,
            schedule_day=guild.schedule_day,
            schedule_time=guild.schedule_time,
            timezone=guild.timezone,
            next_due_at=guild.next_due_at,
            last_run=last_run,
            cooldown_until=cooldown_until,
            cooldown_reason=cooldown_reason if cooldown_until is not None else None,
            album_groups=posted_groups(guild.album_groups),
            mention_role_id=guild.mention_role_id,
            filters=GuildFilters.from_json(guild.filters),
            publish=destinations.publish,
            routes=destinations.routes,
            artist_names=destinations.artist_names,
            release_day=guild.release_day,
            waiting=waiting,
        )
