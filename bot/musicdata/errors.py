"""Errors raised by the MusicBrainz, ListenBrainz and Last.fm clients (:mod:`bot.musicdata`)."""

from __future__ import annotations


class MusicDataError(Exception):
    """A request to MusicBrainz, ListenBrainz or Last.fm that failed (after its retries, where retrying helps).

    ``service``: ``"MusicBrainz"``, ``"ListenBrainz"`` or ``"Last.fm"``; ``status``: the last HTTP status, or None
    when no answer came (connection error, timeout).
    """

    def __init__(self, service: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.status = status


class UnknownUser(MusicDataError):
    """The listening-history service knows no such user: Last.fm error 6 "User not found" (HTTP 404),
    ListenBrainz 404 "Cannot find user: X" (README sections 2 and 4)."""


class InvalidApiKey(MusicDataError):
    """Last.fm refused the API key: error 10 (invalid) or 26 (suspended) (README section 4)."""


class NoStatistics(MusicDataError):
    """ListenBrainz has not computed the user's statistics yet: 204 without a body (README section 2)."""
