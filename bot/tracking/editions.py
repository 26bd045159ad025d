"""Editions of one release: clean/explicit twins and re-issues under a new id (issue 7).

Pure functions over release-like objects (:class:`ReleaseLike`: ``id``, ``name``, ``artists``
— a list of ``{"id", "name"}`` dicts —, ``release_date``, ``release_date_precision``,
``album_type``, ``total_tracks``; e.g. ``storage.models.Release``), so the tracker (deciding what is announced at all) and the delivery
planner (folding a post) apply one rule. No I/O, no discord import.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Protocol

TWIN_MAX_DAYS = 2


class ReleaseLike(Protocol):
    """The fields of a release the edition rules read (a ``releases`` row, or one about to be stored)."""

    @property
    def id(self) -> str:
        """The Spotify album id."""
        ...

    @property
    def name(self) -> str:
        """The title."""
        ...

    @property
    def artists(self) -> Sequence[Mapping[str, str]]:
        """The album's artists, ``[{"id", "name"}, …]``."""
        ...

    @property
    def album_type(self) -> str:
        """Spotify ``album_type``: ``album`` | ``single`` | ``compilation``."""
        ...

    @property
    def release_date(self) -> str:
        """Spotify ``release_date``: ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""
        ...

    @property
    def release_date_precision(self) -> str:
        """Spotify ``release_date_precision``: ``year`` | ``month`` | ``day``."""
        ...

    @property
    def total_tracks(self) -> int | None:
        """Tracks on the release, when known."""
        ...


_MARKER_RE = re.compile(
    r"^(?P<base>.*?)\s*"
    r"(?:-\s*(?P<dash>clean|explicit)(?:\s+version)?"
    r"|[(\[]\s*(?P<paren>clean|explicit)(?:\s+version)?\s*[)\]])"
    r"\s*$",
    re.IGNORECASE,
)


def edition_marker(name: str) -> tuple[str, str | None]:
    """Split a title into (title without marker, ``"clean"`` | ``"explicit"`` | None).

    Recognised (case-insensitive, at the end): " - Clean", " (Clean)", " [Clean]",
    the same with "Explicit", optionally followed by " Version" ("(Clean Version)").
    """
    match = _MARKER_RE.match(name or "")
    if not match or not match.group("base").strip():
        return (name or "").strip(), None
    marker = (match.group("dash") or match.group("paren")).lower()
    return match.group("base").strip(), marker


def _date_of(release: ReleaseLike) -> dt.date | None:
    text = release.release_date or ""
    try:
        if release.release_date_precision == "day" or len(text) == 10:
            return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None
    return None


def are_twins(a: ReleaseLike, b: ReleaseLike) -> bool:
    """True when ``a`` and ``b`` are the clean/explicit editions of one release.

    Same artist id set, same title once a clean/explicit marker is removed (at least
    one of them carrying a marker, case-insensitive), and release dates at most
    :data:`TWIN_MAX_DAYS` days apart (day precision; coarser dates must be equal).
    """
    base_a, mark_a = edition_marker(a.name)
    base_b, mark_b = edition_marker(b.name)
    if mark_a is None and mark_b is None:
        return False
    if base_a.casefold() != base_b.casefold():
        return False
    if {x["id"] for x in a.artists or []} != {x["id"] for x in b.artists or []}:
        return False
    date_a, date_b = _date_of(a), _date_of(b)
    if date_a is not None and date_b is not None:
        return abs((date_a - date_b).days) <= TWIN_MAX_DAYS
    return (a.release_date or "") == (b.release_date or "")


def is_reissue(a: ReleaseLike, b: ReleaseLike) -> bool:
    """True when ``a`` and ``b`` are one release listed under two album ids (a relabel / re-issue).

    Spotify re-lists a release under a new id when its distribution changes (a new label,
    a re-delivery): same artist id set, same title (case-insensitive, clean/explicit
    marker included), same ``album_type``, same ``release_date`` at the same precision and
    the same ``total_tracks``. A re-release on another date, a deluxe edition (other
    title or track count) or a remix is a release of its own.
    """
    if (a.name or "").strip().casefold() != (b.name or "").strip().casefold():
        return False
    if {x["id"] for x in a.artists or []} != {x["id"] for x in b.artists or []}:
        return False
    return (
        a.album_type == b.album_type
        and (a.release_date or "") == (b.release_date or "")
        and a.release_date_precision == b.release_date_precision
        and a.total_tracks is not None
        and a.total_tracks == b.total_tracks
    )


def same_release(new: ReleaseLike, known: ReleaseLike) -> str | None:
    """``"twin"`` when ``new`` is the clean/explicit twin of ``known``, ``"reissue"`` when it is
    ``known`` under a new id (:func:`is_reissue`), else None: ``new`` is a release of its own."""
    if new is known or new.id == known.id:
        return None
    if are_twins(new, known):
        return "twin"
    if is_reissue(new, known):
        return "reissue"
    return None
