"""Spotify Web API access: :class:`SpotifyClient`, parsed models and errors."""

from bot.spotify.client import SpotifyClient
from bot.spotify.errors import (
    SpotifyAuthError,
    SpotifyCooldown,
    SpotifyError,
    SpotifyNotFound,
)
from bot.spotify.links import detect_spotify_kind, parse_spotify_id
from bot.spotify.models import ALBUM_GROUPS, Album, Artist, ArtistRef, Page, Track

__all__ = [
    "ALBUM_GROUPS",
    "Album",
    "Artist",
    "ArtistRef",
    "Page",
    "SpotifyAuthError",
    "SpotifyClient",
    "SpotifyCooldown",
    "SpotifyError",
    "SpotifyNotFound",
    "Track",
    "detect_spotify_kind",
    "parse_spotify_id",
]
