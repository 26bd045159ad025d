"""Which Spotify album groups are fetched for an artist: the groups listing the release types its
guilds post (``guilds.album_groups``), an EP being listed among Spotify's singles.

A guild's types never reach Spotify as they are: ``ep`` is no ``include_groups`` value ("Get
Artist's Albums": album, single, appears_on, compilation), so it becomes ``single``
(:func:`bot.delivery.types.spotify_groups`). A guild that left its types at the default (album,
single, ep, compilation) is therefore fetched exactly album, single and compilation, as before EPs
were a type of their own.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.delivery.types import DEFAULT_RELEASE_TYPES, spotify_groups
from storage import guilds
from storage.db import Session

__all__ = ["tracked_groups"]


async def tracked_groups(session: Session, artist_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``{artist id: Spotify album groups to fetch}`` in Spotify's order (album, single, compilation,
    appears_on): the groups of the union of the release types of the guilds following each artist
    (:func:`storage.guilds.tracked_types`); an artist no guild follows (``release-bot check --artist``)
    gets those of :data:`~bot.delivery.types.DEFAULT_RELEASE_TYPES`. Every id given is a key. Reads only.
    """
    types = await guilds.tracked_types(session, artist_ids)
    return {artist_id: spotify_groups(chosen or DEFAULT_RELEASE_TYPES) for artist_id, chosen in types.items()}
