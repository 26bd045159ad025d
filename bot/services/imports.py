"""``/import`` — follow many artists at once, after a preview (no discord import).

Three sources, one flow:

- ``playlist:`` — the track artists of a public Spotify playlist (:meth:`Importer.preview_playlist`);
- ``links:`` — pasted artist links, ``spotify:artist:`` URIs, ids or names (:meth:`Importer.preview_links`);
- ``file:`` — an uploaded file: the same plain text, or an Exportify CSV (:meth:`Importer.preview_file`);
- ``lastfm:`` / ``listenbrainz:`` — a user's top artists of a period (:meth:`Importer.preview_history`).

How the text and files are read is :mod:`bot.services.import_sources`; the listening histories,
:mod:`bot.services.import_history`. A history's artist with a MusicBrainz id is mapped to Spotify
through MusicBrainz's URL relationship first (no Spotify request: its id and name are then known);
only the others — no MusicBrainz id, or no Spotify link there — cost one search each on Confirm.

1. **Preview** (nothing is changed). The distinct artists, in order of first appearance, minus
   those the server follows already (an id it follows; a name equal to the name of an artist it
   follows, case-insensitive), capped: at most ``cap`` (50) per import and never past the
   server's follow limit (``FollowService.max_follows_per_guild``). It says what confirming will
   cost in Spotify requests: an id costs nothing when the bot knows the artist's name (stored, or
   given beside the id by an Exportify row), otherwise one ``GET /artists/{id}``, which also proves
   the id is an artist's; a name costs one ``GET /search`` (none when the same search was made in
   the last five minutes: :meth:`FollowService.search` caches it); then the silent baselines, at
   least one request per album group the server posts, per artist. The links and file previews
   make no Spotify request (the playlist preview reads the playlist). When the day's budget
   (``requests_per_day``) is limited, the import may spend ``budget_share`` of what is left of it;
   names and unknown ids that share cannot pay for are left out and said so, and an import
   whose every artist needs a request the budget cannot pay is refused. So is one that needs a
   request during a Spotify cooldown.
2. **Confirm** (:meth:`Importer.confirm`): the names are searched and the unknown ids looked up
   (within the import's share of the budget; a name no artist matches and an id Spotify does not
   know are listed, never followed; a name that matches only approximately is followed and
   listed with the name it matched), then the artists are followed — the same race-free storage
   path as ``/follow`` (:meth:`FollowService.follow_many`: the guild write-locked, its follows
   counted against the limit, artists and follows inserted with ``ON CONFLICT DO NOTHING``,
   ``followed_at`` = now) — and each one's **silent baseline** is taken (``Tracker.baseline``) with
   what is left of the share, within ``baseline_seconds``, and never during a Spotify cooldown.
   Artists not baselined then are **pending baseline**: the next run takes their baseline
   silently (``Tracker.track`` baselines a never-baselined artist instead of checking it), so
   nothing they released before is ever posted either way. One import at a time per server,
   across processes (the named lease ``import:<guild id>``).

Spotify 2026 Development Mode: ``GET /playlists/{id}/items`` answers 403 for a playlist
the token's user does not own or collaborate on, and "Get Playlist" embeds entries only
for such playlists. The bot uses the client-credentials flow (no user), so on a
Development Mode app a playlist import is refused with that explanation, pointing to
``/import links:`` and ``/import file:`` (an Exportify export of the playlist) instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.coordination.coordinator import Coordinator
from bot.delivery.types import spotify_groups
from bot.musicdata.errors import MusicDataError
from bot.services.errors import UserError
from bot.services.follows import FollowService, best_match, limit_text
from bot.services.guild_settings import GuildSettingsService
from bot.services.import_history import LASTFM, PERIODS, SERVICE_NAMES, STATS_RANGES, ListeningHistory
from bot.services.import_sources import ArtistEntry, ArtistSource, check_file_size, parse_file, parse_text
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

__all__ = [
    "DEFAULT_IMPORT_CAP",
    "HistoryInfo",
    "ImportCost",
    "ImportItem",
    "ImportPreview",
    "ImportResult",
    "Importer",
    "preview_text",
    "result_text",
]

log = logging.getLogger(__name__)

DEFAULT_IMPORT_CAP = 50
DEFAULT_MAX_ENTRIES = 500
DEFAULT_BASELINE_SECONDS = 60.0
DEFAULT_BUDGET_SHARE = 0.5
SHOWN = 10  # names shown in a list of the preview or the summary

ProgressCallback = Callable[[int, int], Awaitable[None]]
Download = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True)
class ImportItem:
    """One artist an import would follow: ``artist_id`` when the input gives it (``name``: its name
    when known, else ``""``: looked up on Confirm), or only ``name`` (searched on Confirm)."""

    artist_id: str | None
    name: str

    @property
    def label(self) -> str:
        """How the preview shows it: the name, else the id."""
        return self.name or self.artist_id or ""


@dataclass(frozen=True)
class ImportCost:
    """Spotify requests confirming costs, as the preview says: ``searches`` (names, one
    ``GET /search`` each), ``cached`` (names searched in the last minutes: free), ``lookups`` (ids
    whose name the bot does not know: one ``GET /artists/{id}`` each), ``per_baseline`` (at least
    that many requests per artist's silent baseline: one per album group the server posts) and
    ``allowance`` (requests the import may spend today; None: the budget is unlimited)."""

    searches: int = 0
    cached: int = 0
    lookups: int = 0
    per_baseline: int = 1
    allowance: int | None = None


@dataclass(frozen=True)
class HistoryInfo:
    """Where a listening-history import's artists come from and how they were mapped to Spotify.

    ``service``: ``"lastfm"`` or ``"listenbrainz"``; ``user``; ``period`` (Last.fm ``period`` or
    ListenBrainz ``range``); ``min_plays``; ``listed``: distinct artists with at least ``min_plays``
    plays read; ``mapped``: found through MusicBrainz (no Spotify request); ``no_link``: MusicBrainz
    knows the artist but links no Spotify artist; ``no_mbid``: the service gave no MusicBrainz id;
    ``not_mapped``: not looked up on MusicBrainz (past the cap, or MusicBrainz unavailable);
    ``musicbrainz``: ``"ok"``, ``"off"`` (no ``[musicbrainz] contact``) or ``"failed"`` (stopped
    answering); ``musicbrainz_requests``: MusicBrainz requests the preview made. All but ``mapped``
    are found by name (one search each) if they are imported.
    """

    service: str
    user: str
    period: str
    min_plays: int
    listed: int = 0
    mapped: int = 0
    no_link: int = 0
    no_mbid: int = 0
    not_mapped: int = 0
    musicbrainz: str = "ok"
    musicbrainz_requests: int = 0


@dataclass(frozen=True)
class ImportPreview:
    """What an import would do (nothing is changed by the preview).

    ``source``: ``"playlist"``, ``"links"`` or ``"file"``; ``title``: the playlist's name or the
    file's (``""`` for links); ``playlist_id`` for a playlist. ``to_follow``: the artists that would
    be followed, capped, in input order; ``new_artists``: distinct artists not yet followed before
    the caps; ``cap`` and ``cap_reason`` (``"import"``: the per-import cap, ``"limit"``: the
    server's follow limit); ``over_budget``: new artists left out because the day's budget cannot
    pay their search or lookup; ``cost``: the requests confirming costs.
    Playlists: ``entries_read`` of ``entries_total``; ``skipped_entries``: local files, episodes and
    unavailable entries; ``truncated``: stopped reading at ``max_entries``; ``requests``: made
    reading it. Links and files: ``duplicates`` (entries given twice), ``unrecognised`` (what was
    not read as an artist), ``source_info`` (:class:`ArtistSource`: CSV column, rows, skipped rows).
    Listening histories (``source`` ``"lastfm"`` or ``"listenbrainz"``, ``title`` the user):
    ``history`` (:class:`HistoryInfo`).
    """

    guild_id: int
    source: str
    title: str
    to_follow: tuple[ImportItem, ...]
    new_artists: int
    already_followed: int
    distinct_artists: int
    cap: int
    cap_reason: str
    cost: ImportCost = field(default_factory=ImportCost)
    over_budget: int = 0
    playlist_id: str | None = None
    entries_read: int = 0
    entries_total: int = 0
    skipped_entries: int = 0
    truncated: bool = False
    requests: int = 0
    duplicates: int = 0
    unrecognised: tuple[str, ...] = ()
    source_info: ArtistSource | None = None
    history: HistoryInfo | None = None

    @property
    def left_out(self) -> int:
        """New artists not imported because of the cap."""
        return self.new_artists - len(self.to_follow) - self.over_budget


@dataclass(frozen=True)
class ImportResult:
    """What :meth:`Importer.confirm` did.

    ``followed``: newly followed artists; ``baselined``: how many of them have their baseline now;
    ``pending_baseline``: followed, baseline left to the next run (``stopped`` says why:
    ``"budget"``, ``"cooldown"``, ``"time"`` or ``"error"``); ``already_followed``: artists the
    server followed already (followed meanwhile, or a name that matched a followed artist);
    ``over_limit``: not followed because the server reached its follow limit meanwhile.
    Resolving names and ids: ``not_found`` (names no artist matches), ``unknown_ids`` (ids Spotify
    knows no artist by), ``closest`` (``(name given, artist followed)`` when the name matched only
    approximately), ``duplicates`` (names that matched an artist already in this import),
    ``unresolved`` (not searched or looked up: ``unresolved_reason`` ``"budget"`` or
    ``"cooldown"``), ``failed`` (Spotify did not answer for them). ``requests``: Spotify requests made.
    """

    followed: tuple[ArtistRef, ...]
    baselined: int
    pending_baseline: tuple[ArtistRef, ...]
    already_followed: int = 0
    over_limit: int = 0
    stopped: str | None = None
    cooldown_until: dt.datetime | None = None
    requests: int = 0
    source: str = "playlist"
    not_found: tuple[str, ...] = ()
    unknown_ids: tuple[str, ...] = ()
    closest: tuple[tuple[str, str], ...] = ()
    duplicates: int = 0
    unresolved: int = 0
    unresolved_reason: str | None = None
    failed: int = 0


@dataclass
class _Budget:
    left: int | None  # requests the import may still spend (None = unlimited)
    spent: int = 0

    def exhausted(self, estimate: int = 1) -> bool:
        return self.left is not None and self.spent + estimate > self.left


@dataclass
class _Resolution:
    """The artists of a preview with their ids and names, after searches and lookups."""

    profiles: list[ArtistProfile] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    unknown_ids: list[str] = field(default_factory=list)
    closest: list[tuple[str, str]] = field(default_factory=list)
    duplicates: int = 0
    unresolved: int = 0
    reason: str | None = None
    failed: int = 0
    cooldown_until: dt.datetime | None = None
    requests: int = 0


class Importer:
    """Preview and confirm imports (a playlist, pasted links or names, a file).

    ``db``: the opened store; ``spotify``: reads playlists, looks up ids (its ``request_count``
    gives the requests an import made); ``tracker``: takes the baselines (its
    ``requests_per_day`` is the day's budget, 0 = unlimited; its ``active_cooldown`` the pause);
    ``guild_settings``: creates the guild on first use, gives its album groups; ``follows``:
    follows the artists within the guild's limit and searches names (cached); ``coordinator``: the
    named lease ``import:<guild id>`` (one import per server across processes); ``clock``: aware
    UTC now (the budget's UTC day). ``cap``: artists per import; ``max_entries``: playlist entries
    read at most; ``baseline_seconds``: wall-clock time given to baselines in one confirm;
    ``budget_share``: share of the day's remaining request budget an import may use;
    ``monotonic``: clock (seconds) for the time limit; ``history``: the listening-history clients
    (None: ``/import lastfm:`` and ``listenbrainz:`` say they are not set up).
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
        history: ListeningHistory | None = None,
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
        self.history = (
            history if history is not None else ListeningHistory(lastfm=None, listenbrainz=None, musicbrainz=None)
        )
        self._locks: dict[int, asyncio.Lock] = {}

    # --- preview: a playlist -----------------------------------------------------------------

    async def preview_playlist(self, guild_id: int, text: str) -> ImportPreview:
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
        new = [ImportItem(a.id, a.name) for a in distinct.values() if a.id not in followed]
        already = len(distinct) - len(new)
        if not new:
            raise UserError(
                f"This server already follows all {len(distinct)} artists of “{_plain(playlist.name)}”. "
                "Nothing was changed."
            )
        cap, reason = self._cap(len(followed))
        return ImportPreview(
            guild_id=guild_id,
            source="playlist",
            title=playlist.name,
            playlist_id=playlist.id,
            to_follow=tuple(new[:cap]),
            new_artists=len(new),
            already_followed=already,
            distinct_artists=len(distinct),
            cap=cap,
            cap_reason=reason,
            cost=ImportCost(per_baseline=await self._per_baseline(guild_id), allowance=await self._allowance()),
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
                "(the playlist's ⋯ → Share → Copy link to playlist)"
                + (", or give artists with `/import links:`." if kind == "artist" else ".")
            )
        playlist_id = parse_spotify_id(text, "playlist")
        if playlist_id is None:
            raise UserError(
                "That is not a Spotify playlist link. It looks like "
                "`https://open.spotify.com/playlist/…` (the playlist's ⋯ → Share → Copy link to playlist). "
                "Artist links and names go in `/import links:`."
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
                    "Spotify refused to show this playlist's tracks to the bot (HTTP 403): since 2026, Spotify "
                    "serves a playlist's items only to its owner when the app is in Development Mode (an app "
                    "with Extended Quota Mode may read any public playlist). Import its artists another way: "
                    "export the playlist with Exportify (exportify.net) and upload the CSV with `/import file:`, "
                    "or paste artist links or names into `/import links:`. Nothing was changed."
                ) from None
            log.warning("reading playlist %s failed", playlist_id, exc_info=True)
            raise UserError(SPOTIFY_DID_NOT_ANSWER) from None
        return playlist, entries[: self.max_entries], total

    # --- preview: links and files ------------------------------------------------------------

    async def preview_links(self, guild_id: int, text: str) -> ImportPreview:
        """Say what importing the artists of pasted ``text`` would do (no Spotify request).

        Raises :class:`UserError` for an empty text, nothing recognisable (:func:`parse_text`),
        every artist followed already, a server at its follow limit, and an import the day's
        budget or a cooldown stops entirely.
        """
        return await self._preview_entries(guild_id, "links", "", parse_text(text))

    async def preview_file(
        self, guild_id: int, filename: str, size: int, download: Download, content_type: str | None = None
    ) -> ImportPreview:
        """Say what importing the artists of an uploaded file would do (no Spotify request).

        ``size`` (bytes, as Discord reports it) is checked before ``download()`` fetches the file.
        Raises :class:`UserError` as :meth:`preview_links` does, and for a file over 1 MB, one
        that is not UTF-8, and a CSV with no artist column (:func:`parse_file`).
        """
        check_file_size(filename, size)
        data = await download()
        # Up to a second of parsing for a megabyte of names: off the event loop.
        parsed = await asyncio.to_thread(parse_file, filename, data, content_type)
        return await self._preview_entries(guild_id, "file", filename, parsed)

    # --- preview: listening histories ----------------------------------------------------------

    async def preview_history(
        self, guild_id: int, service: str, user: str, *, period: str | None = None, min_plays: int = 1
    ) -> ImportPreview:
        """Say what importing ``user``'s top artists on ``service`` (``"lastfm"``, ``"listenbrainz"``) over
        ``period`` (Last.fm ``overall``…, ListenBrainz ``all_time``…; None: all time) with at least
        ``min_plays`` plays would do (no Spotify request).

        The artists are mapped in order until the cap is reached: one with a MusicBrainz id through
        MusicBrainz's Spotify URL relationship (one MusicBrainz request each, paced; its id and name
        are then known: 0 Spotify requests on Confirm), the others left to a search each on Confirm.
        Artists the server follows (by id, or by name) are counted as followed already. Raises
        :class:`UserError` for a bad user name or period, an unknown user, a refused key, no
        statistics, a service not configured or not answering, no artist with enough plays, and as
        :meth:`preview_links` does.
        """
        if service not in SERVICE_NAMES:
            raise ValueError(f"service must be one of {sorted(SERVICE_NAMES)}, got {service!r}")
        user = (user or "").strip()
        if not user or len(user) > 100 or any(c in user for c in "/?#&") or user != user.split()[0]:
            raise UserError("Give a user name (as in the profile's address), e.g. `/import lastfm:alice`.")
        periods = PERIODS if service == LASTFM else STATS_RANGES
        period = period or periods[0 if service == LASTFM else -1]
        if period not in periods:
            raise UserError(f"{SERVICE_NAMES[service]} periods are {', '.join(f'`{p}`' for p in periods)}.")
        min_plays = max(1, int(min_plays))
        await self.guild_settings.ensure_guild(guild_id)
        followed = await self.follows.followed_ids(guild_id)
        followed_names = {
            _fold(name) for name, _ in await self.follows.followed_choices(guild_id, "", limit=max(1, len(followed)))
        }
        cap, _reason = self._cap(len(followed))
        listened = await self.history.top_artists(service, user, period, min_plays, enough=cap + len(followed))
        if not listened:
            raise UserError(
                f"**{escape_markdown(user)}** has no artist with at least {_plural(min_plays, 'play')} on "
                f"{SERVICE_NAMES[service]} for `{period}`. Nothing was changed."
            )
        musicbrainz = self.history.musicbrainz
        status = "ok" if musicbrainz is not None else "off"
        entries: list[ArtistEntry] = []
        seen: set[str] = set()
        duplicates = mapped = no_link = no_mbid = not_mapped = mb_requests = fresh = 0
        for artist in listened:
            key = "mbid:" + artist.mbid if artist.mbid else "name:" + _fold(artist.name)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            spotify_id: str | None = None
            if _fold(artist.name) in followed_names:
                entries.append(ArtistEntry(None, artist.name))  # counted as followed already
                continue
            if artist.mbid is None:
                no_mbid += 1
            elif musicbrainz is None or status != "ok" or fresh >= cap:
                not_mapped += 1
            else:
                mb_requests += 1
                try:
                    linked = await musicbrainz.spotify_artists(artist.mbid)
                except MusicDataError:
                    log.warning(
                        "import: MusicBrainz did not answer for %s; the rest by name", artist.mbid, exc_info=True
                    )
                    status, linked = "failed", ()
                    not_mapped += 1
                else:
                    if linked:
                        spotify_id = linked[0]
                        mapped += 1
                    else:
                        no_link += 1
            if spotify_id is not None:
                if spotify_id in seen:
                    duplicates += 1
                    continue
                seen.add(spotify_id)
            entries.append(ArtistEntry(spotify_id, artist.name))
            fresh += spotify_id not in followed if spotify_id is not None else 1
        info = HistoryInfo(
            service=service,
            user=user,
            period=period,
            min_plays=min_plays,
            listed=len(listened) - duplicates,
            mapped=mapped,
            no_link=no_link,
            no_mbid=no_mbid,
            not_mapped=not_mapped,
            musicbrainz=status,
            musicbrainz_requests=mb_requests,
        )
        parsed = ArtistSource(kind=service, entries=tuple(entries))
        preview = await self._preview_entries(guild_id, service, user, parsed)
        return dataclasses.replace(preview, history=info, duplicates=duplicates)

    async def _preview_entries(self, guild_id: int, source: str, title: str, parsed: ArtistSource) -> ImportPreview:
        await self.guild_settings.ensure_guild(guild_id)
        followed = await self.follows.followed_ids(guild_id)
        followed_names = {
            _fold(name) for name, _ in await self.follows.followed_choices(guild_id, "", limit=max(1, len(followed)))
        }
        ids = [e.artist_id for e in parsed.entries if e.artist_id is not None and e.artist_id not in followed]
        known: dict[str, str] = {}
        for start in range(0, len(ids), 900):  # a file may name thousands: bounded IN lists
            known.update(await self.follows.artist_names(ids[start : start + 900]))
        items: list[ImportItem] = []
        named: set[str] = set()  # names of the id items: a name given again is the same artist
        already = 0
        for entry in parsed.entries:
            if entry.artist_id is not None:
                if entry.artist_id in followed:
                    already += 1
                    continue
                item = ImportItem(entry.artist_id, entry.name or known.get(entry.artist_id, ""))
                named.add(_fold(item.name))
            elif _fold(entry.name) in followed_names:
                already += 1
                continue
            else:
                item = ImportItem(None, entry.name)
            items.append(item)
        names_again = [i for i in items if i.artist_id is None and _fold(i.name) in named]
        duplicates = len(names_again)
        items = [i for i in items if i not in names_again]
        distinct = len(parsed.entries) - duplicates
        label = _code(title) if title else "that list"
        if not items:
            raise UserError(
                f"This server already follows all {distinct} artist{'s' * (distinct != 1)} of {label}. "
                "Nothing was changed."
            )
        cap, reason = self._cap(len(followed))
        allowance = await self._allowance()
        to_follow: list[ImportItem] = []
        over_budget = searches = cached = lookups = 0
        for item in items:
            if len(to_follow) >= cap:
                break
            cost = self._cost(item)
            if cost in ("search", "lookup") and allowance is not None and searches + lookups >= allowance:
                over_budget += 1
                continue
            to_follow.append(item)
            searches += cost == "search"
            cached += cost == "cached"
            lookups += cost == "lookup"
        if not to_follow:
            raise UserError(
                f"Today's Spotify request budget cannot pay for this import: finding its {_plural(over_budget, 'artist')} "
                "takes a request each (a search for a name, a lookup for an id the bot doesn't know), and imports "
                f"may spend {allowance} more today (their share of what is left; the rest stays for the scheduled "
                "checks). Try again after midnight UTC. Nothing was changed."
            )
        if searches + lookups:
            cooldown = await self.tracker.active_cooldown()
            if cooldown is not None:
                raise UserError(
                    cooldown_text(cooldown.until)
                    + f" (This import needs {searches + lookups} Spotify request{'s' * (searches + lookups != 1)} "
                    "to find its artists.)"
                )
        return ImportPreview(
            guild_id=guild_id,
            source=source,
            title=title,
            to_follow=tuple(to_follow),
            new_artists=len(items),
            already_followed=already,
            distinct_artists=distinct,
            cap=cap,
            cap_reason=reason,
            cost=ImportCost(searches, cached, lookups, await self._per_baseline(guild_id), allowance),
            over_budget=over_budget,
            duplicates=parsed.duplicates + duplicates,
            unrecognised=parsed.unrecognised,
            source_info=parsed,
        )

    def _cost(self, item: ImportItem) -> str:
        """What resolving ``item`` costs: ``"none"`` (id and name known), ``"lookup"`` (an id without
        a name), ``"cached"`` (a name searched lately) or ``"search"``."""
        if item.artist_id is not None:
            return "none" if item.name else "lookup"
        return "cached" if self.follows.search_is_cached(item.name) else "search"

    def _cap(self, follow_count: int) -> tuple[int, str]:
        """``(cap, reason)`` for a server following ``follow_count`` artists; raises :class:`UserError` at
        the follow limit."""
        room = max(0, self.follows.max_follows_per_guild - follow_count)
        if room == 0:
            raise UserError(limit_text(follow_count))
        return (self.cap, "import") if self.cap <= room else (room, "limit")

    async def _per_baseline(self, guild_id: int) -> int:
        """The fewest requests a silent baseline costs for this server: one per album group it posts."""
        return max(1, len(spotify_groups(await self.guild_settings.album_groups(guild_id))))

    async def _allowance(self) -> int | None:
        """Requests an import may spend now: ``budget_share`` of what is left of the day's budget (None: unlimited)."""
        per_day = self.tracker.requests_per_day
        if per_day <= 0:
            return None
        async with self.db.transaction() as session:
            used = await spotify_state.budget_used_today(session, self._day())
        return int(max(0, per_day - used) * self.budget_share)

    def _day(self) -> str:
        return self.clock().astimezone(dt.UTC).date().isoformat()

    # --- confirm -------------------------------------------------------------------------

    async def confirm(self, preview: ImportPreview, *, progress: ProgressCallback | None = None) -> ImportResult:
        """Find the preview's names and unknown ids, follow the artists and take their silent
        baselines, within the import's share of the day's budget.

        Artists followed since the preview are skipped; the server's follow limit is checked
        again. ``progress(done, total)`` is awaited after each baseline. Raises
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
                budget = _Budget(await self._allowance())
                resolved = await self._resolve(preview.to_follow, budget)
                followed, already, over = await self._follow_all(preview, resolved.profiles)
                baselined, pending, stopped, cooldown_until, requests = await self._baselines(
                    followed, budget, progress
                )
            finally:
                await self.coordinator.release(lease)
            return ImportResult(
                followed=tuple(followed),
                baselined=baselined,
                pending_baseline=tuple(pending),
                already_followed=already,
                over_limit=over,
                stopped=stopped,
                cooldown_until=cooldown_until or resolved.cooldown_until,
                requests=resolved.requests + requests,
                source=preview.source,
                not_found=tuple(resolved.not_found),
                unknown_ids=tuple(resolved.unknown_ids),
                closest=tuple(resolved.closest),
                duplicates=resolved.duplicates,
                unresolved=resolved.unresolved,
                unresolved_reason=resolved.reason,
                failed=resolved.failed,
            )

    async def _resolve(self, items: tuple[ImportItem, ...], budget: _Budget) -> _Resolution:
        """The Spotify ids and names of ``items``: names searched (the best match: an exact name
        first), ids without a name looked up, each paid from ``budget`` and recorded in the day's count."""
        out = _Resolution()
        seen: set[str] = set()
        needs_requests = any(self._cost(i) in ("search", "lookup") for i in items)
        cooldown = await self.tracker.active_cooldown() if needs_requests else None
        for item in items:
            if item.artist_id is not None and item.name:
                profile: ArtistProfile | None = ArtistProfile(item.artist_id, item.name)
            else:
                if self._cost(item) in ("search", "lookup"):
                    if out.reason is None and cooldown is not None:
                        out.reason, out.cooldown_until = "cooldown", cooldown.until
                    elif out.reason is None and budget.exhausted():
                        out.reason = "budget"
                    if out.reason is not None:
                        out.unresolved += 1
                        continue
                before = self.spotify.request_count
                try:
                    profile = await self._find(item, out)
                except SpotifyCooldown as exc:
                    out.reason, out.cooldown_until = "cooldown", exc.until
                    out.unresolved += 1
                    profile = None
                except SpotifyError:
                    log.warning("import: could not find %r", item.label, exc_info=True)
                    out.failed += 1
                    profile = None
                finally:
                    spent = self.spotify.request_count - before
                    budget.spent += spent
                    out.requests += spent
            if profile is None:
                continue
            if profile.id in seen:
                out.duplicates += 1
                continue
            seen.add(profile.id)
            out.profiles.append(profile)
        if out.requests:
            async with self.db.transaction() as session:
                await spotify_state.settle_budget(session, self._day(), out.requests)
        return out

    async def _find(self, item: ImportItem, out: _Resolution) -> ArtistProfile | None:
        """One ``GET /artists/{id}`` for an id, one (cached) search for a name; None (and noted in
        ``out``) for an id Spotify does not know or a name no artist matches."""
        if item.artist_id is not None:
            try:
                artist = await self.spotify.get_artist(item.artist_id)
            except SpotifyNotFound:
                out.unknown_ids.append(item.artist_id)
                return None
        else:
            match = best_match(await self.follows.search(item.name), item.name)
            if match is None:
                out.not_found.append(item.name)
                return None
            if _fold(match.name) != _fold(item.name):
                out.closest.append((item.name, match.name))
            artist = match
        return ArtistProfile(artist.id, artist.name, artist.image_url)

    async def _follow_all(
        self, preview: ImportPreview, profiles: list[ArtistProfile]
    ) -> tuple[list[ArtistRef], int, int]:
        """Follow ``profiles`` (those followed already are skipped, the limit is checked again):
        ``(followed, already followed, refused by the limit)``."""
        if not profiles:
            return [], 0, 0
        result = await self.follows.follow_many(preview.guild_id, profiles, refresh_profiles=False)
        new = set(result.followed)
        followed = [ArtistRef(p.id, p.name) for p in profiles if p.id in new]
        log.info(
            "import into guild %s: followed %d artists of %s %s",
            preview.guild_id,
            len(followed),
            preview.source,
            preview.playlist_id or preview.title,
        )
        return followed, len(result.already), len(result.over_limit)

    async def _baselines(
        self, artists: list[ArtistRef], budget: _Budget, progress: ProgressCallback | None
    ) -> tuple[int, list[ArtistRef], str | None, dt.datetime | None, int]:
        """Baselines of ``artists`` within the budget and time: ``(baselined, pending, stopped, cooldown
        until, requests)``."""
        tracker = self.tracker
        spotify = self.spotify
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
                if budget.exhausted(max(1, len(groups))):  # at least one request per tracked group
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


def _fold(name: str) -> str:
    """A name as compared: case and spacing ignored."""
    return " ".join(name.casefold().split())


def _plain(text: str) -> str:
    return (text or "").replace("`", "'").replace("*", "").replace("_", " ")[:100] or "that playlist"


def _code(text: str) -> str:
    """``text`` (a file name) as inline code, a backtick in it replaced."""
    return "`" + text.replace("`", "'")[:100] + "`"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _listing(values: list[str] | tuple[str, ...], *, code: bool = False, limit: int = SHOWN) -> str:
    """``“a”, “b” and 3 more`` (markdown escaped), or with ``code`` ```a`, `b` and 3 more``."""
    shown = [f"`{v}`" if code else f"“{escape_markdown(v)}”" for v in values[:limit]]
    more = len(values) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _clip(text: str) -> str:
    return text if len(text) <= 2000 else text[:1999] + "…"


def preview_text(preview: ImportPreview, *, names: int = SHOWN) -> str:
    """The confirmation prompt: what the source holds, whom confirming follows (the first ``names``),
    the cap, what it costs in Spotify requests and what it will not do."""
    if preview.source == "playlist":
        lines = _playlist_lines(preview, names)
    elif preview.history is not None:
        lines = _history_lines(preview, preview.history, names)
    else:
        lines = _entries_lines(preview, names)
    lines.append(_cost_line(preview))
    lines.append("What they have already released won't be posted; only their new releases will.")
    return _clip("\n".join(lines))


def _follow_line(preview: ImportPreview, names: int) -> str:
    """Whom confirming follows: a known artist by name, an id to look up as code, a name to search in quotes."""
    shown = [
        f"`{i.artist_id}`" if not i.name else escape_markdown(i.name) if i.artist_id else f"“{escape_markdown(i.name)}”"
        for i in preview.to_follow[:names]
    ]
    more = len(preview.to_follow) - len(shown)
    return (
        f"Follow **{len(preview.to_follow)}** of them: "
        + ", ".join(shown)
        + (f" and {more} more" if more else "")
        + "."
    )


def _cap_line(preview: ImportPreview) -> str:
    if preview.left_out > 0:
        why = (
            f"at most {preview.cap} artists per import"
            if preview.cap_reason == "import"
            else f"this server can follow only {preview.cap} more artists"
        )
        return f"Capped: {why}; {preview.left_out} more are not included (import again to add them)."
    return (
        f"Cap: at most {preview.cap} artists per import."
        if preview.cap_reason == "import"
        else f"Cap: this server can follow {preview.cap} more artists."
    )


def _playlist_lines(preview: ImportPreview, names: int) -> list[str]:
    lines = [
        f"**{_plain(preview.title)}** has {_plural(preview.distinct_artists, 'artist')}"
        + (f" ({preview.already_followed} already followed here)" if preview.already_followed else "")
        + ".",
        _follow_line(preview, names),
        _cap_line(preview),
    ]
    if preview.truncated:
        lines.append(f"Only the first {preview.entries_read} of {preview.entries_total} tracks were read.")
    if preview.skipped_entries:
        lines.append(f"Skipped {preview.skipped_entries} local files, episodes or unavailable tracks.")
    return lines


def _entries_lines(preview: ImportPreview, names: int) -> list[str]:
    info = preview.source_info
    where = _code(preview.title) if preview.title else "Your list"
    read = ""
    if info is not None and info.kind == "csv":
        read = f" (the `{info.column}` column of {_plural(info.rows, 'row')})"
    lines = [
        f"{where}{read} names {_plural(preview.distinct_artists, 'artist')}"
        + (f" ({preview.already_followed} already followed here)" if preview.already_followed else "")
        + ".",
        _follow_line(preview, names),
        _cap_line(preview),
    ]
    if preview.over_budget:
        lines.append(
            f"Not included: {_plural(preview.over_budget, 'artist')} whose name or id needs a Spotify request "
            f"today's budget cannot pay (imports may spend {preview.cost.allowance} more today); import them "
            "again tomorrow."
        )
    if preview.duplicates:
        lines.append(f"Given twice, counted once: {_plural(preview.duplicates, 'entry', 'entries')}.")
    if preview.unrecognised:
        lines.append(
            f"Not recognised as artists, skipped: {_listing(preview.unrecognised, limit=5)} "
            "(album, track and playlist links, other addresses and overlong names are not read)."
        )
    if info is not None and (info.local_rows or info.bad_rows):
        parts = []
        if info.local_rows:
            parts.append(f"{_plural(info.local_rows, 'local file')} (no Spotify artist)")
        if info.bad_rows:
            parts.append(f"{_plural(info.bad_rows, 'row')} without a readable artist")
        lines.append("Skipped " + " and ".join(parts) + ".")
    if preview.cost.searches or preview.cost.cached:
        lines.append("Names that match no Spotify artist are listed after Confirm, and nothing is followed for them.")
    return lines


def _history_lines(preview: ImportPreview, info: HistoryInfo, names: int) -> list[str]:
    service = SERVICE_NAMES[info.service]
    lines = [
        f"**{escape_markdown(info.user)}**'s top artists on {service} (`{info.period}`, at least "
        f"{_plural(info.min_plays, 'play')}): {_plural(info.listed, 'artist')}"
        + (f" ({preview.already_followed} already followed here)" if preview.already_followed else "")
        + ".",
        _follow_line(preview, names),
        _cap_line(preview),
    ]
    by_name = info.no_link + info.no_mbid + info.not_mapped
    mapping = f"Mapped through MusicBrainz (its Spotify link): {info.mapped}"
    if by_name:
        why = []
        if info.no_mbid:
            why.append(f"{info.no_mbid} without a MusicBrainz id")
        if info.no_link:
            why.append(f"{info.no_link} with no Spotify link on MusicBrainz")
        if info.not_mapped:
            why.append(f"{info.not_mapped} not looked up there")
        mapping += f"; by name: {by_name} ({', '.join(why)})"
    lines.append(mapping + ".")
    if info.musicbrainz == "off":
        lines.append(
            "MusicBrainz is not set up on this bot (`[musicbrainz] contact`), so every artist is found by name."
        )
    elif info.musicbrainz == "failed":
        lines.append("MusicBrainz stopped answering, so the rest are found by name.")
    if preview.over_budget:
        lines.append(
            f"Not included: {_plural(preview.over_budget, 'artist')} whose name needs a Spotify search today's "
            f"budget cannot pay (imports may spend {preview.cost.allowance} more today); import again tomorrow."
        )
    if preview.cost.searches or preview.cost.cached:
        lines.append("Names that match no Spotify artist are listed after Confirm, and nothing is followed for them.")
    return lines


def _cost_line(preview: ImportPreview) -> str:
    cost = preview.cost
    n = len(preview.to_follow)
    parts = []
    known = n - cost.searches - cost.cached - cost.lookups
    if preview.source == "playlist":
        parts.append(f"reading the playlist took {_plural(preview.requests, 'request')}")
    elif preview.history is not None:
        parts.append(f"mapped via MusicBrainz: 0 to read {_plural(known, 'artist')}")
    elif known:
        parts.append(f"0 to read {_plural(known, 'artist id')} (names known)")
    if cost.lookups:
        parts.append(
            f"{cost.lookups} to look up {_plural(cost.lookups, 'id')} the bot doesn't know (one `GET /artists/{{id}}` each)"
        )
    if cost.searches or cost.cached:
        parts.append(
            ("names: " if preview.history is not None else "")
            + f"{cost.searches} to search {_plural(cost.searches + cost.cached, 'name')}, one each"
            + (f" ({cost.cached} searched in the last minutes: free)" if cost.cached else "")
        )
    parts.append(
        f"then the silent baselines: at least {cost.per_baseline} per artist (≥ {cost.per_baseline * n} in all)"
    )
    line = "Cost in Spotify requests: " + "; ".join(parts) + "."
    if cost.allowance is not None:
        line += (
            f" Imports may spend {cost.allowance} more today (their share of what is left of the day's budget); "
            "baselines past that are taken, still silently, at the next check."
        )
    return line


def result_text(result: ImportResult) -> str:
    """The summary after confirming: who was followed, the baselines, and every artist not followed and why."""
    n = len(result.followed)
    origin = " from the playlist" if result.source == "playlist" else ""
    parts = [f"Now following **{n}** artist{'s' * (n != 1)}{origin}." if n else "No artist was followed."]
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
        parts.append(f"{result.already_followed} already followed here.")
    if result.over_limit:
        parts.append(f"{result.over_limit} not followed: the server reached its follow limit.")
    if result.closest:
        pairs = [f"“{escape_markdown(given)}” → {escape_markdown(found)}" for given, found in result.closest[:SHOWN]]
        more = len(result.closest) - len(pairs)
        parts.append(
            "Matched by the closest name: " + ", ".join(pairs) + (f" and {more} more" if more > 0 else "") + "."
        )
    if result.duplicates:
        parts.append(f"{result.duplicates} matched an artist already in this import.")
    if result.not_found:
        parts.append(f"No Spotify artist matches {_listing(result.not_found)}: not followed.")
    if result.unknown_ids:
        parts.append(f"Spotify knows no artist with the id {_listing(result.unknown_ids, code=True)}: not followed.")
    if result.unresolved:
        why = (
            "Spotify paused the bot's requests"
            if result.unresolved_reason == "cooldown"
            else "today's Spotify request budget ran out"
        )
        parts.append(f"{result.unresolved} not searched or looked up: {why}. Import them again later.")
    if result.failed:
        parts.append(f"{result.failed} could not be looked up: Spotify did not answer. Import them again.")
    return _clip(" ".join(parts))
