"""Listening histories for ``/import lastfm:`` and ``/import listenbrainz:`` (no discord import, no SQL).

:class:`ListeningHistory` reads a user's top artists — Last.fm ``user.getTopArtists`` with a
``period``, ListenBrainz ``/1/stats/user/{user}/artists`` with a ``range`` (``../shared/musicdata/
README.md`` sections 4 and 2) — and maps an artist's MusicBrainz id to its Spotify artist through
MusicBrainz's URL relationships (``GET /ws/2/artist/{mbid}?inc=url-rels``, on the request slot every
process shares: one a second). The importer (:meth:`bot.services.imports.Importer.preview_history`)
maps by MusicBrainz first and leaves only the rest to a Spotify search each.

The service's refusals become :class:`UserError` with the reason: an unknown user (Last.fm error 6,
ListenBrainz 404), a refused key (Last.fm errors 10 and 26), no statistics yet (ListenBrainz 204), a
service not configured or not answering.
"""

from __future__ import annotations

import logging

from bot.musicdata.errors import InvalidApiKey, MusicDataError, NoStatistics, UnknownUser
from bot.musicdata.lastfm import PERIODS, LastFmClient
from bot.musicdata.listenbrainz import STATS_RANGES, ListenBrainzClient
from bot.musicdata.models import ListenedArtist
from bot.musicdata.musicbrainz import MusicBrainzClient
from bot.services.errors import UserError
from bot.services.text import escape_markdown

__all__ = ["LASTFM", "LISTENBRAINZ", "PERIODS", "STATS_RANGES", "ListeningHistory"]

log = logging.getLogger(__name__)

LASTFM = "lastfm"
LISTENBRAINZ = "listenbrainz"
PAGE_SIZE = 100  # artists asked per request (Last.fm's maximum is undocumented; ListenBrainz serves ≤ 1000)

SERVICE_NAMES = {LASTFM: "Last.fm", LISTENBRAINZ: "ListenBrainz"}


class ListeningHistory:
    """The clients ``/import`` reads listening histories with; each is None when not configured.

    ``lastfm``: needs ``[lastfm] api_key``; ``listenbrainz`` and ``musicbrainz``: need ``[musicbrainz]
    contact`` (both services refuse clients without a meaningful User-Agent). ``max_entries``: artists
    read at most from one history.
    """

    def __init__(
        self,
        *,
        lastfm: LastFmClient | None,
        listenbrainz: ListenBrainzClient | None,
        musicbrainz: MusicBrainzClient | None,
        max_entries: int = 500,
    ) -> None:
        self.lastfm = lastfm
        self.listenbrainz = listenbrainz
        self.musicbrainz = musicbrainz
        self.max_entries = max(1, int(max_entries))

    async def top_artists(
        self, service: str, user: str, period: str, min_plays: int, enough: int
    ) -> list[ListenedArtist]:
        """``user``'s artists with at least ``min_plays`` plays over ``period``, most played first: pages
        are read until an artist has fewer plays, ``enough`` artists are read, the history ends, or
        :attr:`max_entries`. ``service``: :data:`LASTFM` (``period`` one of :data:`PERIODS`) or
        :data:`LISTENBRAINZ` (one of :data:`STATS_RANGES`). Raises :class:`UserError` as the module
        docstring says."""
        name = SERVICE_NAMES[service]
        shown = f"**{escape_markdown(user)}**"
        wanted = min(max(1, enough), self.max_entries)
        found: list[ListenedArtist] = []
        try:
            if service == LASTFM:
                if self.lastfm is None:
                    raise UserError(
                        "Importing from Last.fm is not set up on this bot: its operator has to add a Last.fm API key "
                        "(`[lastfm] api_key` in the configuration). Nothing was changed."
                    )
                page, pages = 1, 1
                while page <= pages and len(found) < wanted:
                    top = await self.lastfm.top_artists(user, period=period, limit=PAGE_SIZE, page=page)
                    found.extend(top.artists)
                    pages = top.total_pages
                    page += 1
                    if not top.artists or top.artists[-1].plays < min_plays:
                        break
            else:
                if self.listenbrainz is None:
                    raise UserError(
                        "Importing from ListenBrainz is not set up on this bot: its operator has to give a contact "
                        "(`[musicbrainz] contact` in the configuration; ListenBrainz refuses anonymous clients). "
                        "Nothing was changed."
                    )
                total = 1
                while len(found) < min(total, wanted):
                    artists, total = await self.listenbrainz.user_artists(
                        user, stats_range=period, count=PAGE_SIZE, offset=len(found)
                    )
                    found.extend(artists)
                    if not artists or artists[-1].plays < min_plays:
                        break
        except UnknownUser:
            raise UserError(f"{name} knows no user {shown}. Check the user name. Nothing was changed.") from None
        except InvalidApiKey:
            log.error("Last.fm refused the configured API key (invalid or suspended)")
            raise UserError(
                "Last.fm refused this bot's API key (invalid or suspended); its operator has to fix "
                "`[lastfm] api_key`. Nothing was changed."
            ) from None
        except NoStatistics:
            raise UserError(
                f"ListenBrainz has no statistics for {shown} yet (they are computed a while after the first "
                "listens). Try again later. Nothing was changed."
            ) from None
        except MusicDataError:
            log.warning("reading %s's top artists on %s failed", user, name, exc_info=True)
            raise UserError(f"{name} did not answer just now; nothing was changed. Try again in a minute.") from None
        return [a for a in found[: self.max_entries] if a.plays >= min_plays and a.name.strip()]
