"""``/refresh`` (check now, with progress), ``/status``, ``/history`` (the last runs) and ``/preview`` (the next post)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.delivery.planner import FILTER_NAMES, Announcement
from bot.scheduling.runner import RunSummary
from bot.services.errors import UserError
from bot.services.runs import REFRESH_RUNNING_TEXT, HistoryRow, Preview, RunService, waiting_text
from cogs.common import guild_id_of, reply, require_manage_guild
from cogs.settings import publish_text, route_lines

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

log = logging.getLogger(__name__)


def summary_text(summary: RunSummary) -> str:
    """One short paragraph about a finished run, for ``/refresh``."""
    posted = summary.releases_posted
    waiting = sum(max(0, d.pending) for d in summary.deliveries.values())
    if posted:
        outcome = f"**{posted} new release{'s' * (posted != 1)}** posted."
    elif waiting:
        outcome = "nothing posted yet."
    else:
        outcome = "no new releases."
    lines = [
        f"Checked {summary.artists_checked}/{summary.artists_due} artists (coverage {summary.coverage:.0%}) · {outcome}"
    ]
    if summary.failed_artists:
        names = ", ".join(name for _id, name, _reason in summary.failed_artists[:10])
        more = len(summary.failed_artists) - 10
        lines.append(
            f"Could not check {names}{f' and {more} more' if more > 0 else ''}; "
            "they will be checked again next run, so nothing is missed."
        )
    if summary.cooldown_until is not None:
        lines.append(f"Spotify paused this bot's requests until <t:{int(summary.cooldown_until.timestamp())}:f>.")
    for problem in _guild_problems(summary):
        lines.append(f"⚠ {problem}")
    return "\n".join(lines)


def _guild_problems(summary: RunSummary) -> list[str]:
    problems = []
    for result in summary.deliveries.values():
        if result.retry_at is not None and summary.finished_at is not None:
            text = waiting_text(result.pending, result.failure, result.retry_at, summary.finished_at)
            problems.append(f"{text[0].upper()}{text[1:]}.")
            continue
        if result.stopped:
            n = result.pending
            problems.append(
                f"The bot is restarting: {n} release{'s' * (n != 1)} wait{'s' * (n == 1)} for the next run."
            )
            continue
        problem = result.problem or result.error
        if problem:
            problems.append(f"Posting failed: {problem}. The releases stay pending and will be posted once fixed.")
    return problems


WAITING_TEXT = (
    "Another run is in progress (the weekly run or another server's refresh); this refresh starts as soon as it ends…"
)
PROGRESS_INTERVAL = 1.5  # seconds between two edits of the /refresh reply (the first one too)
HISTORY_LIMIT = 10
_STATUS_ICONS = {"ok": "✅", "partial": "⚠️", "failed": "❌", "running": "⏳"}
_SKIP_TEXT = {
    "type": "of a type not posted",
    "muted": "muted appearances",
    "block_artist": "crediting a blocked artist",
    "block_title": "with a blocked keyword or pattern in the title",
    "edition": "other editions of releases already announced",
    **FILTER_NAMES,
}


def progress_text(done: int, total: int) -> str:
    """The ``/refresh`` reply while it runs."""
    return f"Checking… checked {done} / {total} artists."


class ProgressReporter:
    """The ``progress(done, total)`` callback of a ``/refresh``: edits the deferred reply, throttled.

    Called synchronously by the tracker; an edit runs as a task so tracking never waits for
    Discord. At most one edit per ``interval`` seconds, the first one ``interval`` after the
    deferral (a quick refresh shows only its summary), none once every artist is checked (the
    summary follows), and never two at once. ``clock`` is
    ``time.monotonic`` (tests inject one).
    """

    def __init__(
        self,
        interaction: discord.Interaction,
        *,
        interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interaction = interaction
        self.interval = interval
        self.clock = clock
        self.last_edit = clock()
        self.edits: list[str] = []
        self._task: asyncio.Task | None = None
        self._note_task: asyncio.Task | None = None
        self._closed = False
        self.started = False

    def __call__(self, done: int, total: int) -> None:
        self.started = True
        if done < total:  # all checked: the summary follows at once
            self._maybe_edit(progress_text(done, total))

    def note_if_not_started(self, text: str, delay: float) -> None:
        """Show ``text`` after ``delay`` seconds unless the run has reported progress by then
        (e.g. that this refresh waits for another run to end)."""

        async def later() -> None:
            await asyncio.sleep(delay)
            if not self.started and not self._closed and (self._task is None or self._task.done()):
                self._start(text)

        self._note_task = asyncio.get_running_loop().create_task(later())

    def _maybe_edit(self, text: str) -> None:
        if self._closed or (self._task is not None and not self._task.done()):
            return
        if self.clock() - self.last_edit < self.interval:
            return
        self._start(text)

    def _start(self, text: str) -> None:
        if self._closed:
            return
        self.last_edit = self.clock()
        self.edits.append(text)
        self._task = asyncio.get_running_loop().create_task(self._edit(text))

    async def _edit(self, text: str) -> None:
        """Show ``text``; a failed edit is logged (progress is best effort: the refresh goes on)."""
        try:
            await self.interaction.edit_original_response(content=text)
        except Exception:
            log.warning("could not show /refresh progress", exc_info=True)

    async def close(self) -> None:
        """Stop editing and wait for an edit in flight (so the summary is the last edit)."""
        self._closed = True
        if self._note_task is not None:
            self._note_task.cancel()
        if self._task is not None:
            await self._task


def history_line(row: HistoryRow) -> str:
    """One ``/history`` line: when, trigger, status, coverage, Spotify requests, posts (and skips) here."""
    run = row.run
    when = run.finished_at or run.started_at
    due = run.artists_due or 0
    icon = _STATUS_ICONS.get(run.status, "•")
    trigger = {"schedule": "weekly", "refresh": "/refresh"}.get(run.trigger, run.trigger)
    line = (
        f"{icon} <t:{int(when.timestamp())}:f> · {trigger} · {run.status} · "
        f"checked {run.artists_checked or 0}/{due} ({row.coverage:.0%}) · "
        f"{run.spotify_requests or 0} requests · {row.posted} posted"
    )
    if row.skipped:
        line += f", {row.skipped} skipped"
    if run.artists_failed:
        line += f" · {run.artists_failed} failed"
    return line


PREVIEW_LINES = 15
"""Releases listed by name (with where each goes) in the ``/preview`` reply; the rest are counted."""


def _where(channel_id: int | None) -> str:
    return f"<#{channel_id}>" if channel_id else "no channel (none set yet — `/settings channel`)"


def preview_reply(pv: Preview) -> tuple[str, list[discord.Embed]]:
    """``/preview``: a short text — how many releases go where, each release with its destination — and
    the embeds of the first message the next post would send."""
    if pv.skipped:
        why = ", ".join(f"{n} {_SKIP_TEXT.get(k, k)}" for k, n in sorted(pv.skipped.items()))
        skipped = f"\nNot posted, ever: {why}."
    else:
        skipped = ""
    if not pv.announcements:
        return (
            "Nothing is waiting to be posted: the next post would be empty. New releases are found by the "
            "weekly check or `/refresh`." + skipped
        ), []
    n = len(pv.announcements)
    messages = sum(len(post.messages) for post in pv.posts)
    split = " · ".join(f"{len(post.announcements)} to {_where(post.channel_id)}" for post in pv.posts)
    text = (
        f"The next post would announce **{n} release{'s' * (n != 1)}** in {messages} "
        f"message{'s' * (messages != 1)}" + (f", mentioning {pv.mention}" if pv.mention else "") + f": {split}."
    )
    lines = [
        f"• {discord.utils.escape_markdown(_title(a))} → {_where(post.channel_id)}"
        for post in pv.posts
        for a in post.announcements
    ]
    text += "\n" + "\n".join(lines[:PREVIEW_LINES])
    if len(lines) > PREVIEW_LINES:
        text += f"\n… and {len(lines) - PREVIEW_LINES} more."
    first = pv.posts[0]
    if messages > 1:
        text += f"\nShowing the first message ({len(first.messages[0])} of {n}) to {_where(first.channel_id)}."
    text += skipped + "\nA check may still find more. Nothing was changed."
    return text[:2000], [discord.Embed.from_dict(e) for e in first.messages[0]]


def _title(announcement: Announcement) -> str:
    """ "Artist — Title" of an announcement's main release."""
    release = announcement.release
    artists = ", ".join(str(a.get("name") or "") for a in release.artists or () if a.get("name"))
    return f"{artists} — {release.name}" if artists else release.name


class Runs(commands.Cog):
    """Run on demand and show the bot's state for this server."""

    def __init__(self, bot: ReleaseBot) -> None:
        self.bot = bot
        self.progress_interval = PROGRESS_INTERVAL

    @property
    def runs(self) -> RunService:
        """The bot's :class:`RunService`."""
        return self.bot.services.runs

    @app_commands.command(name="refresh", description="Check this server's artists now and post new releases.")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @require_manage_guild()
    async def refresh(self, interaction: discord.Interaction) -> None:
        service = self.runs
        if service.refresh_running(guild_id_of(interaction)):
            await reply(interaction, REFRESH_RUNNING_TEXT)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        progress = ProgressReporter(interaction, interval=self.progress_interval)
        if service.run_in_progress:
            progress.note_if_not_started(WAITING_TEXT, self.progress_interval)
        try:
            summary = await service.refresh(guild_id_of(interaction), progress=progress)
        except UserError as exc:  # shown in place of the progress, not as a second message
            await progress.close()
            await interaction.edit_original_response(content=str(exc))
            return
        finally:
            await progress.close()
        await interaction.edit_original_response(content=summary_text(summary))

    @app_commands.command(name="history", description="The last runs: trigger, status, coverage, requests and posts.")
    @app_commands.guild_only()
    async def history(self, interaction: discord.Interaction) -> None:
        rows = await self.runs.history(guild_id_of(interaction), limit=HISTORY_LIMIT)
        if not rows:
            await reply(interaction, "No run yet. The first weekly run is shown by `/status`; `/refresh` runs now.")
            return
        embed = discord.Embed(
            title=f"Last {len(rows)} run{'s' * (len(rows) != 1)}",
            description="\n".join(history_line(r) for r in rows)[:4096],
        )
        embed.set_footer(text="Posts and skips are this server's; weekly runs check every server due at that time.")
        await reply(interaction, embed=embed)

    @app_commands.command(name="preview", description="What the next post would contain now (only you see it).")
    @app_commands.guild_only()
    async def preview(self, interaction: discord.Interaction) -> None:
        pv = await self.runs.preview(guild_id_of(interaction))
        text, embeds = preview_reply(pv)
        await interaction.response.send_message(
            content=text, embeds=embeds, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @app_commands.command(name="status", description="Show the channel, schedule, last run and any Spotify pause.")
    @app_commands.guild_only()
    async def status(self, interaction: discord.Interaction) -> None:
        st = await self.runs.status(guild_id_of(interaction))
        embed = discord.Embed(title="release-bot status")
        channel = f"<#{st.channel_id}>" if st.channel_id else "not set — use `/settings channel`"
        if st.channel_problem:
            channel += f"\n⚠ {st.channel_problem}. Fix the channel's permissions or pick another with `/settings channel`; pending releases will then be posted."
        embed.add_field(name="Channel", value=channel, inline=False)
        destinations = st.destinations
        if destinations.routes:
            embed.add_field(name="Routes", value="\n".join(route_lines(destinations))[:1024], inline=False)
        publish = publish_text(interaction, destinations) if destinations.publish else "off"
        embed.add_field(name="Publish", value=publish[:1024], inline=False)
        embed.add_field(name="Following", value=f"{st.follows} artist{'s' * (st.follows != 1)}")
        embed.add_field(
            name="Schedule",
            value=f"{st.schedule_text}\nnext <t:{int(st.next_due_at.timestamp())}:F>"
            + ("\nrelease day: on (announced releases posted as soon as Spotify lists them)" if st.release_day else ""),
        )
        embed.add_field(name="Posting", value=st.album_groups_text)
        mention = st.mention_role_id
        embed.add_field(name="Mention", value=f"<@&{mention}>" if mention else "nobody")
        filters = st.filters
        parts = [FILTER_NAMES[k] for k in FILTER_NAMES if k in filters.skip]
        if filters.mute_appearances:
            n = len(filters.mute_appearances)
            parts.append(f"appearances of {n} artist{'s' * (n != 1)} muted")
        if filters.block_keywords or filters.block_patterns:
            n = len(filters.block_keywords) + len(filters.block_patterns)
            parts.append(f"{n} blocked title keyword{'s' * (n != 1)} or pattern{'s' * (n != 1)}")
        if filters.block_artists:
            n = len(filters.block_artists)
            parts.append(f"releases crediting {n} blocked artist{'s' * (n != 1)}")
        if parts:
            embed.add_field(name="Not posted", value=", ".join(parts), inline=False)
        if st.last_run is not None:
            run = st.last_run
            due = run.artists_due or 0
            coverage = (run.artists_checked / due) if due else 1.0
            when = run.finished_at or run.started_at
            embed.add_field(
                name="Last run",
                value=(
                    f"{run.trigger}, <t:{int(when.timestamp())}:R>: {run.status}; "
                    f"checked {run.artists_checked}/{due} ({coverage:.0%}), "
                    f"{run.releases_posted} posted, {run.spotify_requests} Spotify requests"
                ),
                inline=False,
            )
        else:
            embed.add_field(name="Last run", value="none yet", inline=False)
        if st.waiting:
            embed.add_field(name="Waiting", value=f"⏳ {st.waiting}.", inline=False)
        if st.cooldown_until is not None:
            embed.add_field(
                name="Spotify",
                value=f"paused until <t:{int(st.cooldown_until.timestamp())}:f> ({st.cooldown_reason or 'rate limit'})",
                inline=False,
            )
        await reply(interaction, embed=embed)


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Runs(bot))
