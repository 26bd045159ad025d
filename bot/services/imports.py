"""``/import playlist:`` — follow the artists of a public Spotify playlist (no discord import).

Two steps, so the admin sees what will happen before anything changes:

1. :meth:`PlaylistImporter.preview` reads the playlist (``GET /playlists/{id}``, which
   embeds up to 100 entries, then ``GET /playlists/{id}/items`` 50 at a time, at most
   ``max_entries`` entries), collects the distinct **track artists** in order of first
   appearance (local files, podcast episodes and null entries skipped), drops the ones
   the server already follows and applies the **cap**: at most ``cap`` (50) per import
   and never past the server's follow limit (``FollowService.max_follows_per_guild``).
2. :meth:`PlaylistImporter.confirm` follows them — the same race-free storage path as
   ``/follow`` (:meth:`FollowService.follow_many`: the guild write-locked, its follows counted
   against the limit, artists and follows inserted with ``ON CONFLICT DO NOTHING``,
   ``followed_at`` = now) — and takes each one's **silent baseline**
   (``Tracker.baseline``) while the day's request budget allows: at most
   ``budget_share`` of what is left of ``requests_per_day`` (the rest stays for the
   runs), within ``baseline_seconds``, and never during a Spotify cooldown. Artists not
   baselined then are **pending baseline**: the next run takes their baseline silently
   (``Tracker.track`` baselines a never-baselined artist instead of checking it), so
   nothing they released before is ever posted either way.

Spotify 2026 Development Mode: ``GET /playlists/{id}/items`` answers 403 for a playlist
the token's user does not own or collaborate on, and "Get Playlist" embeds entries only
for such playlists. The bot uses the client-credentials flow (no user), so on a
Development Mode app the import is refused with that explanation; it works for an app
with Extended Quota Mode (or a Spotify that serves the entries, like the emulator).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.clock import Clock
from bot.coordination.coordinator import Coordinator
from bot.services.errors import UserError
from bot.services.follows import FollowService, limit_text
from bot.services.guild_settings import GuildSettingsService
from bot.services.text import SPOTIFY_DID_NOT_ANSWER, cooldown_text, escape_markdown
from bot.spotify.client import MAX_PLAYLIST_PAGE_LIMIT, SpotifyClient
from bot.spotify.errors import SpotifyCooldown, SpotifyError, SpotifyNotFound
from bot.spotify.links import detect_spotify_kind, parse_spotify_id
from bot.spotify.models import ArtistRef, Playlist, PlaylistEntry
from bot.tracking import Tracker
from bot.tracking.groups import tracked_groups
from storage import spotify_state
from storage.catalog import ArtistProfile
from storage.db import Database

__all__ = ["DEFAULT_IMPORT_CAP", "ImportPreview", "ImportResult", "PlaylistImporter", "preview_text", "result_text"]

log = logging.getLogger(__name__)

DEFAULT_IMPORT_CAP = 50
DEFAULT_MAX_ENTRIES = 500
DEFAULT_BASELINE_SECONDS = 60.0
DEFAULT_BUDGET_SHARE = 0.5

ProgressCallback = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True)
class ImportPreview:
    """What an import would do (nothing is changed by the preview).

    ``to_follow``: the artists that would be followed, capped, in playlist order;
    ``new_artists``: distinct artists not yet followed before the cap; ``cap`` and
    ``cap_reason`` (``"import"``: the per-import cap, ``"limit"``: the server's follow
    limit); ``entries_read`` of ``entries_total``; ``skipped_entries``: local files,
    episodes and unavailable entries; ``truncated``: stopped reading at ``max_entries``.
    """

    guild_id: int
    playlist_id: str
    playlist_name: str
    to_follow: tuple[ArtistRef, ...]
    new_artists: int
    already_followed: int
    distinct_artists: int
    cap: int
    cap_reason: str
    entries_read: int
    entries_total: int
    skipped_entries: int
    truncated: bool
    requests: int = 0

    @property
    def left_out(self) -> int:
        """New artists not imported because of the cap."""
        return self.new_artists - len(self.to_follow)


@dataclass(frozen=True)
class ImportResult:
    """What :meth:`PlaylistImporter.confirm` did.

    ``followed``: newly followed artists; ``baselined``: how many of them have their
    baseline now; ``pending_baseline``: followed, baseline left to the next run
    (``stopped`` says why: ``"budget"``, ``"cooldown"``, ``"time"`` or ``"error"``);
    ``already_followed``: followed in the meantime (skipped); ``over_limit``: not
    followed because the server reached its follow limit in the meantime.
    """

    followed: tuple[ArtistRef, ...]
    baselined: int
    pending_baseline: tuple[ArtistRef, ...]
    already_followed: int = 0
    over_limit: int = 0
    stopped: str | None = None
    cooldown_until: dt.datetime | None = None
    requests: int = 0


@dataclass
class _Budget:
    left: int | None  # requests the import may still spend on baselines (None = unlimited)
    spent: int = 0


class PlaylistImporter:
    """Preview and confirm playlist imports.

    ``db``: the opened store; ``spotify``: reads the playlist (its ``request_count`` gives the
    requests an import made); ``tracker``: takes the baselines (its ``requests_per_day`` is the
    day's budget, 0 = unlimited); ``guild_settings``: creates the guild on first use; ``follows``:
    follows the artists within the guild's limit; ``coordinator``: the named lease ``import:<guild id>`` (one import per server across
    processes); ``clock``: aware UTC now (the budget's UTC day). ``cap``: artists per import;
    ``max_entries``: playlist entries read at most; ``baseline_seconds``: wall-clock time given
    to baselines in one confirm; ``budget_share``: share of the day's remaining request budget an
    import may use; ``monotonic``: clock (seconds) for the time limit.
    """

    def __init__(
        self,
        db: Database,
        spotify: SpotifyClient,
        tracker: Tracker,
        guild_settings: GuildSettingsService,
        follows: FollowService,
        coordinator: Coordinator,
        *,
        clock: Clock,
        cap: int = DEFAULT_IMPORT_CAP,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        baseline_seconds: float = DEFAULT_BASELINE_SECONDS,
        budget_share: float = DEFAULT_BUDGET_SHARE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.spotify = spotify
        self.tracker = tracker
        self.guild_settings = guild_settings
        self.follows = follows
        self.coordinator = coordinator
        self.clock = clock
        self.cap = max(1, int(cap))
        self.max_entries = max(1, int(max_entries))
        self.baseline_seconds = float(baseline_seconds)
        self.budget_share = min(1.0, max(0.0, float(budget_share)))
        self.monotonic = monotonic
        self._locks: dict[int, asyncio.Lock] = {}

    # --- preview -------------------------------------------------------------------------

    async def preview(self, guild_id: int, text: str) -> ImportPreview:
        """Read the playlist at ``text`` and say what importing it would follow.

        Raises :class:`UserError` for a link that is not a playlist, a private or
        unknown playlist, one whose entries Spotify refuses (403), one with no track
        artists, one whose artists are all followed already, a server at its follow
        limit, a cooldown, or Spotify not answering.
        """
        playlist_id = self._playlist_id(text)
        before = self.spotify.request_count
        playlist, entries, total = await self._read(playlist_id)
        requests = self.spotify.request_count - before

        distinct: dict[str, ArtistRef] = {}
        skipped = 0
        for entry in entries:
            if entry.kind != "track" or not entry.artists:
                skipped += 1
                continue
            for artist in entry.artists:
                distinct.setdefault(artist.id, artist)
        if not distinct:
            raise UserError(
                f"“{_plain(playlist.name)}” has no tracks with Spotify artists "
                "(it is empty, or holds only local files or podcast episodes). Nothing was changed."
            )

        await self.guild_settings.ensure_guild(guild_id)
        followed = await self.follows.followed_ids(guild_id)
        new = [a for a in distinct.values() if a.id not in followed]
        already = len(distinct) - len(new)
        if not new:
            raise UserError(
                f"This server already follows all {len(distinct)} artists of “{_plain(playlist.name)}”. "
                "Nothing was changed."
            )
        room = max(0, self.follows.max_follows_per_guild - len(followed))
        if room == 0:
            raise UserError(limit_text(len(followed)))
        cap, reason = (self.cap, "import") if self.cap <= room else (room, "limit")
        return ImportPreview(
            guild_id=guild_id,
            playlist_id=playlist.id,
            playlist_name=playlist.name,
            to_follow=tuple(new[:cap]),
            new_artists=len(new),
            already_followed=already,
            distinct_artists=len(distinct),
            cap=cap,
            cap_reason=reason,
            entries_read=len(entries),
            entries_total=max(total, len(entries)),
            skipped_entries=skipped,
            truncated=len(entries) < total,
            requests=requests,
        )

    @staticmethod
    def _playlist_id(text: str) -> str:
        text = (text or "").strip()
        if not text:
            raise UserError(
                "Give a public Spotify playlist link (in Spotify: the playlist's ⋯ → Share → Copy link to playlist)."
            )
        kind = detect_spotify_kind(text)
        if kind is not None and kind != "playlist":
            raise UserError(
                f"That is a Spotify {kind} link, not a playlist. Share the playlist instead "
                "(the playlist's ⋯ → Share → Copy link to playlist)."
            )
        playlist_id = parse_spotify_id(text, "playlist")
        if playlist_id is None:
            raise UserError(
                "That is not a Spotify playlist link. It looks like "
                "`https://open.spotify.com/playlist/…` (the playlist's ⋯ → Share → Copy link to playlist)."
            )
        return playlist_id

    async def _read(self, playlist_id: str) -> tuple[Playlist, list[PlaylistEntry], int]:
        spotify = self.spotify
        try:
            playlist = await spotify.get_playlist(playlist_id)
            page = playlist.first_page
            if page is None:
                page = await spotify.playlist_items(playlist_id, limit=MAX_PLAYLIST_PAGE_LIMIT, offset=0)
            entries = list(page.items)
            total = max(page.total, playlist.total or 0)
            while len(entries) < min(total, self.max_entries) and page.items:
                page = await spotify.playlist_items(playlist_id, limit=MAX_PLAYLIST_PAGE_LIMIT, offset=len(entries))
                entries.extend(page.items)
                total = max(total, page.total)
        except SpotifyCooldown as exc:
            raise UserError(cooldown_text(exc.until)) from None
        except SpotifyNotFound:
            raise UserError(
                "That playlist doesn't exist or is private. Only public playlists can be imported "
                "(in Spotify: the playlist's ⋯ → Make public), then try again."
            ) from None
        except SpotifyError as exc:
            if exc.status == 403:
                raise UserError(
                    "Spotify refused to show this playlist's tracks to the bot (HTTP 403). Since 2026, apps in "
                    "Spotify's Development Mode may read the tracks only of playlists their own account owns; "
                    "the bot's operator needs an app with Extended Quota Mode for imports. "
                    "Follow the artists with `/follow` instead. Nothing was changed."
                ) from None
            log.warning("reading playlist %s failed", playlist_id, exc_info=True)
            raise UserError(SPOTIFY_DID_NOT_ANSWER) from None
        return playlist, entries[: self.max_entries], total

    # --- confirm -------------------------------------------------------------------------

    async def confirm(self, preview: ImportPreview, *, progress: ProgressCallback | None = None) -> ImportResult:
        """Follow ``preview.to_follow`` and take their silent baselines within the budget.

        Artists followed since the preview are skipped; the server's follow limit is
        checked again. ``progress(done, total)`` is awaited after each baseline. Raises
        :class:`UserError` when another import runs in this server.
        """
        lock = self._locks.setdefault(preview.guild_id, asyncio.Lock())
        if lock.locked():
            raise UserError("An import is already running in this server; wait for it to finish.")
        lease = f"import:{preview.guild_id}"
        async with lock:
            # Several processes: the per-server guard is a named lease in the store.
            if not await self.coordinator.try_lease(lease):
                raise UserError("An import is already running in this server; wait for it to finish.")
            try:
                followed, already, over = await self._follow_all(preview)
                result = await self._baselines(followed, progress)
            finally:
                await self.coordinator.release(lease)
            return ImportResult(
                followed=tuple(followed),
                baselined=result[0],
                pending_baseline=tuple(result[1]),
                already_followed=already,
                over_limit=over,
                stopped=result[2],
                cooldown_until=result[3],
                requests=result[4],
            )

    async def _follow_all(self, preview: ImportPreview) -> tuple[list[ArtistRef], int, int]:
        """Follow the preview's artists (those followed since are skipped, the limit is checked again):
        ``(followed, already followed, refused by the limit)``."""
        result = await self.follows.follow_many(
            preview.guild_id, [ArtistProfile(a.id, a.name) for a in preview.to_follow], refresh_profiles=False
        )
        new = set(result.followed)
        followed = [a for a in preview.to_follow if a.id in new]
        log.info(
            "import into guild %s: followed %d artists of playlist %s",
            preview.guild_id,
            len(followed),
            preview.playlist_id,
        )
        return followed, len(result.already), len(result.over_limit)

    async def _budget(self) -> _Budget:
        per_day = self.tracker.requests_per_day
        if per_day <= 0:
            return _Budget(None)
        day = self.clock().astimezone(dt.UTC).date().isoformat()
        async with self.db.transaction() as session:
            used = await spotify_state.budget_used_today(session, day)
        return _Budget(int(max(0, per_day - used) * self.budget_share))

    async def _baselines(
        self, artists: list[ArtistRef], progress: ProgressCallback | None
    ) -> tuple[int, list[ArtistRef], str | None, dt.datetime | None, int]:
        """Baselines of ``artists`` within the budget and time: ``(baselined, pending, stopped, cooldown
        until, requests)``."""
        tracker = self.tracker
        spotify = self.spotify
        budget = await self._budget()
        deadline = self.monotonic() + self.baseline_seconds
        pending: list[ArtistRef] = []
        baselined = 0
        stopped: str | None = None
        cooldown_until: dt.datetime | None = None
        requests = 0
        for i, artist in enumerate(artists):
            if stopped is None:
                async with self.db.transaction() as session:
                    groups = (await tracked_groups(session, [artist.id]))[artist.id]
                estimate = max(1, len(groups))  # at least one request per tracked group
                if budget.left is not None and budget.spent + estimate > budget.left:
                    stopped = "budget"
                elif self.monotonic() >= deadline:
                    stopped = "time"
            if stopped is not None:
                pending.append(artist)
                continue
            before = spotify.request_count
            try:
                await tracker.baseline(artist.id)
                baselined += 1
            except SpotifyCooldown as exc:
                stopped, cooldown_until = "cooldown", exc.until
                pending.append(artist)
            except SpotifyError:
                log.warning("import: baseline of %s deferred to the next run", artist.id, exc_info=True)
                pending.append(artist)
            finally:
                spent = spotify.request_count - before
                budget.spent += spent
                requests += spent
            if progress is not None:
                try:
                    await progress(i + 1, len(artists))
                except Exception:  # a progress message failing must not stop the import
                    log.debug("import progress callback failed", exc_info=True)
        if pending and stopped is None:
            stopped = "error"
        return baselined, pending, stopped, cooldown_until, requests


def _plain(text: str) -> str:
    return (text or "").replace("`", "'").replace("*", "").replace("_", " ")[:100] or "that playlist"


def preview_text(preview: ImportPreview, *, names: int = 10) -> str:
    """The confirmation prompt: counts, the first ``names`` artists, the cap, what confirming does."""
    shown = [a.name or a.id for a in preview.to_follow[:names]]
    more = len(preview.to_follow) - len(shown)
    lines = [
        f"**{_plain(preview.playlist_name)}** has {preview.distinct_artists} "
        f"artist{'s' * (preview.distinct_artists != 1)}"
        + (f" ({preview.already_followed} already followed here)" if preview.already_followed else "")
        + "."
    ]
    lines.append(
        f"Follow **{len(preview.to_follow)}** of them: "
        + ", ".join(escape_markdown(n) for n in shown)
        + (f" and {more} more" if more else "")
        + "."
    )
    if preview.left_out:
        why = (
            f"at most {preview.cap} artists per import"
            if preview.cap_reason == "import"
            else f"this server can follow only {preview.cap} more artists"
        )
        lines.append(f"Capped: {why}; {preview.left_out} more are not included (import again to add them).")
    else:
        lines.append(
            f"Cap: at most {preview.cap} artists per import."
            if preview.cap_reason == "import"
            else f"Cap: this server can follow {preview.cap} more artists."
        )
    if preview.truncated:
        lines.append(f"Only the first {preview.entries_read} of {preview.entries_total} tracks were read.")
    if preview.skipped_entries:
        lines.append(f"Skipped {preview.skipped_entries} local files, episodes or unavailable tracks.")
    lines.append("What they have already released won't be posted; only their new releases will.")
    text = "\n".join(lines)
    return text if len(text) <= 2000 else text[:1999] + "…"


def result_text(result: ImportResult) -> str:
    """The summary after confirming."""
    n = len(result.followed)
    parts = [f"Now following **{n}** artist{'s' * (n != 1)} from the playlist."]
    if result.baselined:
        parts.append(f"{result.baselined} ready: what they already released won't be posted.")
    if result.pending_baseline:
        why = {
            "budget": "today's Spotify request budget is reserved for the scheduled checks",
            "cooldown": "Spotify paused the bot's requests",
            "time": "that took long enough for now",
            "error": "Spotify did not answer for them",
        }.get(result.stopped or "", "Spotify was busy")
        parts.append(
            f"{len(result.pending_baseline)} pending: {why}, so their past releases will be noted "
            "(not posted) at the next check."
        )
    if result.already_followed:
        parts.append(f"{result.already_followed} were followed in the meantime.")
    if result.over_limit:
        parts.append(f"{result.over_limit} not followed: the server reached its follow limit.")
    return " ".join(parts)
