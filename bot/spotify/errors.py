"""Errors raised by the Spotify client (``bot.spotify.client``)."""

from __future__ import annotations

import datetime as dt


class SpotifyError(Exception):
    """Any failure talking to Spotify that retries could not fix. ``status`` is the HTTP status or None."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SpotifyNotFound(SpotifyError):
    """404 (or 400 "invalid id") for an artist or album id."""


class SpotifyAuthError(SpotifyError):
    """The token endpoint refused the client id/secret (400/401), or the API answered 401
    again right after the access token was renewed."""


class SpotifyCooldown(SpotifyError):
    """No request may be made before ``until`` (UTC).

    Raised when a 429 says ``QUOTA_EXCEEDED`` or asks for a wait longer than the
    client's ``max_retry_after`` seconds, and for every call made while a recorded
    cooldown is in force. ``reason`` is Spotify's reason or "rate limit".
    """

    def __init__(self, until: dt.datetime, reason: str) -> None:
        super().__init__(f"Spotify cooldown until {until.isoformat()} ({reason})", status=429)
        self.until = until
        self.reason = reason
