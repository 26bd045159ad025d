"""Errors raised by the MusicBrainz and ListenBrainz clients (:mod:`bot.musicdata`)."""

from __future__ import annotations


class MusicDataError(Exception):
    """A request to MusicBrainz or ListenBrainz that retries could not make succeed.

    ``service``: ``"MusicBrainz"`` or ``"ListenBrainz"``; ``status``: the last HTTP status, or None
    when no answer came (connection error, timeout).
    """

    def __init__(self, service: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.status = status
