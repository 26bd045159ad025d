"""Which Spotify release a MusicBrainz release group is (docs/musicdata.md, "Matching").

Pure rules over one release group and its candidates: the Spotify releases linked to one of the
followed artists the group is mapped to (``artist_releases``), not matched to another group yet.

1. **Barcode**: a candidate whose UPC (``releases.upc``: Spotify's ``external_ids.upc``, stored by
   the labeler's ``GET /albums/{id}``) equals one of the group's release barcodes, compared as
   digits without leading zeros (a 12-digit UPC-A is the 13-digit EAN with a leading 0). Its date
   does not matter: a barcode names one product.
2. **Title and date**, where no barcode decides: a candidate dated to the day
   (``release_date_precision = "day"``) at most :data:`DATE_TOLERANCE_DAYS` from the group's date,
   whose title scores at least :data:`TITLE_THRESHOLD` — rapidfuzz ``fuzz.ratio`` (0–100,
   normalised Indel similarity) of both titles normalised by
   :func:`bot.tracking.labels.normalise_title` (NFKC, casefolded, typographic quotes and dashes
   made plain, "(feat. X)" and clean/explicit markers removed, spaces collapsed). A remix title
   (:func:`bot.tracking.labels.remix_base`) never matches a title that is not one, nor the reverse,
   whatever the score (a long title plus "(X Remix)" can score above the threshold).

Among several candidates: the best score, then the nearest date, then a compatible type (MusicBrainz
Album ↔ Spotify album or compilation, Single or EP ↔ single), then the earliest first seen. Among
several release groups that pick one Spotify release (:meth:`bot.musicdata.signal.MusicSignal.match`):
a barcode match first, then the best score, then the compatible type, then the earliest date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz

from bot.tracking.labels import normalise_title, remix_base
from storage.models import Release

TITLE_THRESHOLD = 90.0
"""Lowest ``fuzz.ratio`` (0–100) of the normalised titles for a title-and-date match."""

DATE_TOLERANCE_DAYS = 3
"""Most days between the release group's date and the Spotify release's for a title-and-date match."""

_COMPATIBLE = {"Album": {"album", "compilation"}, "Single": {"single"}, "EP": {"single", "ep"}}


def normalise_barcode(code: str | None) -> str | None:
    """``code``'s digits without leading zeros, or None when it has none (a UPC-A and its EAN-13 agree)."""
    digits = "".join(c for c in code or "" if c.isdigit()).lstrip("0")
    return digits or None


def title_score(group_title: str, release_name: str) -> float:
    """How alike two titles are, 0–100 (see the module docstring); 0 when one is a remix title and the other not."""
    if (remix_base(group_title) is None) != (remix_base(release_name) is None):
        return 0.0
    return float(fuzz.ratio(normalise_title(group_title), normalise_title(release_name)))


def spotify_day(release: Release) -> dt.date | None:
    """A release's date when Spotify gives it to the day, else None."""
    if release.release_date_precision != "day":
        return None
    try:
        return dt.date.fromisoformat(release.release_date)
    except ValueError:
        return None


@dataclass(frozen=True)
class Match:
    """Release group → Spotify release ``release_id``, by ``method`` (``"upc"`` | ``"title"``); ``score``
    is the title score (100 for a barcode match); ``type_agrees``: the types are compatible."""

    release_id: str
    method: Literal["upc", "title"]
    score: float
    type_agrees: bool


def pick_match(
    *,
    title: str,
    release_date: dt.date,
    primary_type: str | None,
    barcodes: Iterable[str],
    candidates: Collection[Release],
) -> Match | None:
    """The Spotify release among ``candidates`` that the release group (``title``, ``release_date``,
    ``primary_type``, its releases' ``barcodes``) is, by the rules of the module docstring; None when
    none qualifies."""
    codes = {c for c in (normalise_barcode(b) for b in barcodes) if c}

    def distance(release: Release) -> int:
        day = spotify_day(release)
        return abs((day - release_date).days) if day is not None else 10**6

    def compatible(release: Release) -> bool:
        return release.album_type in _COMPATIBLE.get(primary_type or "", ())

    by_barcode = [r for r in candidates if normalise_barcode(r.upc) in codes]
    if by_barcode:
        best = min(by_barcode, key=lambda r: (distance(r), not compatible(r), r.first_seen_at, r.id))
        return Match(best.id, "upc", 100.0, compatible(best))
    scored = [(title_score(title, r.name), r) for r in candidates if distance(r) <= DATE_TOLERANCE_DAYS]
    qualified = [(score, r) for score, r in scored if score >= TITLE_THRESHOLD]
    if not qualified:
        return None
    score, best = min(
        qualified, key=lambda sr: (-sr[0], distance(sr[1]), not compatible(sr[1]), sr[1].first_seen_at, sr[1].id)
    )
    return Match(best.id, "title", score, compatible(best))
