"""The free second signal (docs/musicdata.md): MusicBrainz and ListenBrainz, no posting; and the
listening-history clients of ``/import`` (Last.fm, ListenBrainz statistics, MusicBrainz artist lookups).

:class:`MusicBrainzClient` (Spotify artist URLs → MusicBrainz artists, release barcodes) paced by a
:class:`SharedRateLimit` every process shares; :class:`ListenBrainzClient` (fresh releases);
:class:`MusicSignal` (the daily job: mapping, fetch, matching). Built by :mod:`bot.wiring` when
``[musicbrainz] enabled``; :class:`LastFmClient` (a user's top artists) when ``[lastfm] api_key`` is set.

One package for both services: ListenBrainz is MusicBrainz's sibling, serves MusicBrainz ids and
shares its User-Agent rule, and the job needs both.
"""

from __future__ import annotations

from importlib.metadata import version

from bot.musicdata.errors import InvalidApiKey, MusicDataError, NoStatistics, UnknownUser
from bot.musicdata.lastfm import LastFmClient
from bot.musicdata.listenbrainz import ListenBrainzClient
from bot.musicdata.models import FreshRelease, ListenedArtist
from bot.musicdata.musicbrainz import MusicBrainzClient
from bot.musicdata.pacing import SharedRateLimit
from bot.musicdata.signal import DailyReport, MusicSignal


def user_agent(contact: str) -> str:
    """The User-Agent MusicBrainz and ListenBrainz require: ``release-bot/<version> ( <contact> )``
    (README 3(d): ``AppName/version ( contact-url-or-email )``); ``contact`` is ``[musicbrainz] contact``.
    Without a contact (Last.fm alone asks only for an identifiable one): ``release-bot/<version>``."""
    name = f"release-bot/{version('release-bot')}"
    return f"{name} ( {contact} )" if contact else name


__all__ = [
    "DailyReport",
    "FreshRelease",
    "InvalidApiKey",
    "LastFmClient",
    "ListenBrainzClient",
    "ListenedArtist",
    "MusicBrainzClient",
    "MusicDataError",
    "MusicSignal",
    "NoStatistics",
    "SharedRateLimit",
    "UnknownUser",
    "user_agent",
]
