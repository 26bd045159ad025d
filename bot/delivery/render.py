"""Releases → Discord embed dicts, packed into messages within Discord's limits.

Plain dicts in the shape of Discord's Embed object (Discord API reference,
"Channel › Embed Object" and "Embed Limits"): title ≤ 256, description ≤ 4,096,
≤ 25 fields (name ≤ 256, value ≤ 1,024), footer ≤ 2,048, author name ≤ 256; a
message carries ≤ 10 embeds whose title, description, field names and values,
footer text and author name add up to ≤ 6,000 characters. No discord import:
the sender turns these into ``discord.Embed.from_dict``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

from bot.delivery.planner import Announcement
from bot.delivery.types import TYPE_NAMES, release_type
from storage.models import Release

ALBUM_URL = "https://open.spotify.com/album/{}"
ARTIST_URL = "https://open.spotify.com/artist/{}"
SPOTIFY_GREEN = 0x1DB954

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBEDS_PER_MESSAGE = 10
CHARS_PER_MESSAGE = 6000

FORUM_TITLE_LIMIT = 100  # a forum post's (thread's) name: 1–100 characters
_MARKDOWN_RE = re.compile(r"([\\*_~`|>\[\]()])")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape_markdown(text: str) -> str:
    """Backslash-escape Discord markdown characters (so a name cannot break a link)."""
    return _MARKDOWN_RE.sub(r"\\\1", text)


def format_release_date(date: str, precision: str | None) -> str:
    """Spotify release date at its precision: day "20 Nov 2026", month "Nov 2026", year "2026".

    An unparsable date is returned unchanged ("" stays "").
    """
    try:
        if precision == "year" or len(date) == 4:
            return str(int(date[:4]))
        if precision == "month" or len(date) == 7:
            d = dt.date.fromisoformat(date[:7] + "-01")
            return d.strftime("%b %Y")
        d = dt.date.fromisoformat(date[:10])
        return f"{d.day} {d.strftime('%b %Y')}"
    except (ValueError, TypeError):
        return date or ""


def _artist_line(artists: Iterable[Mapping[str, str]], limit: int) -> str:
    """Artists (``[{"id", "name"}]``) as markdown links, dropping the tail ("… and N more") to stay within ``limit``."""
    links = [
        f"[{escape_markdown(name or artist_id)}]({ARTIST_URL.format(artist_id)})"
        if artist_id
        else escape_markdown(name)
        for artist_id, name in ((a.get("id") or "", a.get("name") or "") for a in artists)
    ]
    line = ""
    for i, link in enumerate(links):
        candidate = link if not line else f"{line}, {link}"
        rest = len(links) - i - 1
        suffix = f" … and {rest} more" if rest else ""
        if len(candidate) + len(suffix) > limit:
            return _truncate(f"{line} … and {len(links) - i} more" if line else f"{len(links)} artists", limit)
        line = candidate
    return line


LABEL_NAME_LIMIT = 200  # a referenced release's title inside a label line
_EDITION_TEXT = {
    "deluxe": "Deluxe edition",
    "anniversary": "Anniversary edition",
    "expanded": "Expanded edition",
    "remaster": "Remastered edition",
    "special": "New edition",
}


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _ref(label: dict[str, Any]) -> str:
    name = escape_markdown(_truncate(str(label.get("name") or "an earlier release"), LABEL_NAME_LIMIT))
    return f"*{name}*"


def label_lines(release: Release, labels: Sequence[object] | None = None) -> list[str]:
    """The release's labels (``releases.labels``, see ``bot.tracking.labels``) as short lines.

    ``carries_singles`` → "3 new tracks, 2 already out as singles"; ``edition_of`` →
    "Deluxe edition of *X* — 4 bonus tracks"; ``remix_of`` → "Remix of *X*";
    ``back_catalogue`` → "Newly added to Spotify (released 2011)". Unknown kinds are skipped.
    ``labels``: shown in place of the release's own (another edition's: :func:`announcement_embed`);
    they are JSON as stored, so an entry that is not an object is skipped.
    """
    lines = []
    for label in (release.labels if labels is None else labels) or ():
        if not isinstance(label, dict):
            continue
        kind = label.get("kind")
        if kind == "carries_singles":
            new, known = int(label.get("new_tracks") or 0), int(label.get("known_tracks") or 0)
            lines.append(
                f"{_plural(new, 'new track', 'new tracks')}, "
                f"{known} already out as {'a single' if known == 1 else 'singles'}"
            )
        elif kind in ("edition_of", "deluxe_of"):
            text = f"{_EDITION_TEXT.get(label.get('edition') or 'deluxe', 'New edition')} of {_ref(label)}"
            bonus = label.get("bonus_tracks")
            if isinstance(bonus, int):
                text += f" — {_plural(bonus, 'bonus track', 'bonus tracks')}" if bonus else " — no bonus tracks"
            lines.append(text)
        elif kind == "remix_of":
            many = (release.total_tracks or 1) > 1
            lines.append(f"{'Remixes' if many else 'Remix'} of {_ref(label)}")
        elif kind == "back_catalogue":
            released = format_release_date(release.release_date or "", release.release_date_precision)
            lines.append(f"Newly added to Spotify (released {released})" if released else "Newly added to Spotify")
    return lines


def release_embed(release: Release, *, labels: Sequence[object] | None = None) -> dict[str, Any]:
    """The embed dict announcing ``release`` (a ``storage.models.Release``).

    Title = name (≤ 256), ``url`` = ``https://open.spotify.com/album/<id>``,
    description = the artists as markdown links to their Spotify pages (≤ 4,096),
    inline fields "Type" (Album/Single/EP/Compilation: :func:`bot.delivery.types.release_type`), "Released" (at the date's
    precision) and "Tracks" (when known), thumbnail = cover image when known. The
    release's labels (:func:`label_lines`) follow the artists in the description, one
    per line (at most 2,048 characters); the artist line shrinks to keep it ≤ 4,096.
    ``labels``: shown in place of the release's own (:func:`label_lines`).
    """
    kind = release_type((release.album_type or "").lower(), release.total_tracks)
    fields = [
        {
            "name": "Type",
            "value": TYPE_NAMES.get(kind, (release.album_type or "?").title()),
            "inline": True,
        },
        {
            "name": "Released",
            "value": format_release_date(release.release_date or "", release.release_date_precision) or "unknown",
            "inline": True,
        },
    ]
    if release.total_tracks:
        fields.append({"name": "Tracks", "value": str(release.total_tracks), "inline": True})
    embed: dict[str, Any] = {
        "type": "rich",
        "title": _truncate(release.name or "Untitled", TITLE_LIMIT),
        "url": ALBUM_URL.format(release.id),
        "description": _description(release, labels),
        "color": SPOTIFY_GREEN,
        "fields": fields,
    }
    if release.image_url:
        embed["thumbnail"] = {"url": release.image_url}
    return embed


def _description(release: Release, labels: Sequence[object] | None) -> str:
    notes = "\n".join(label_lines(release, labels))
    notes = _truncate(notes, DESCRIPTION_LIMIT // 2)
    if not notes:
        return _artist_line(release.artists, DESCRIPTION_LIMIT)
    return f"{_artist_line(release.artists, DESCRIPTION_LIMIT - len(notes) - 1)}\n{notes}"


def announcement_embed(announcement: Announcement) -> dict[str, Any]:
    """:func:`release_embed` of the main release; folded twins are named in the footer ("Also: … (Clean)").

    When the main release has no labels, those of a folded twin are shown.
    """
    main = announcement.release
    labels = None
    if not main.labels:
        labels = next((t.labels for t in announcement.twins if t.labels), None)
    embed = release_embed(main, labels=labels)
    if announcement.twins:
        names = ", ".join(t.name for t in announcement.twins)
        embed["footer"] = {"text": _truncate(f"Also: {names}", FOOTER_LIMIT)}
    return embed


def embed_size(embed: dict[str, Any]) -> int:
    """Characters counted toward the 6,000 per-message limit: title, description, field names and values, footer text, author name."""
    size = len(embed.get("title") or "") + len(embed.get("description") or "")
    for fld in embed.get("fields") or ():
        size += len(str(fld.get("name") or "")) + len(str(fld.get("value") or ""))
    size += len((embed.get("footer") or {}).get("text") or "")
    size += len((embed.get("author") or {}).get("name") or "")
    return size


def pack_indices(embeds: Sequence[dict[str, Any]]) -> list[list[int]]:
    """Greedy in-order packing of ``embeds`` into messages; returns the embed indices per message.

    Each message has ≤ 10 embeds totalling ≤ 6,000 characters (:func:`embed_size`);
    a single embed larger than 6,000 (never produced by :func:`release_embed`) goes alone.
    """
    messages: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, embed in enumerate(embeds):
        n = embed_size(embed)
        if current and (len(current) >= EMBEDS_PER_MESSAGE or size + n > CHARS_PER_MESSAGE):
            messages.append(current)
            current, size = [], 0
        current.append(i)
        size += n
    if current:
        messages.append(current)
    return messages


def pack_messages(embeds: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``embeds`` split, in order, into messages of ≤ 10 embeds and ≤ 6,000 characters (see :func:`pack_indices`)."""
    return [[embeds[i] for i in group] for group in pack_indices(embeds)]


def render_messages(announcements: Sequence[Announcement]) -> list[list[dict[str, Any]]]:
    """Announcements → messages (lists of embed dicts), one embed per announcement, packed."""
    return pack_messages([announcement_embed(a) for a in announcements])


class AllowedMentions(TypedDict, total=False):
    """Discord's Allowed Mentions object (API reference, "Message › Allowed Mentions Object"), as sent:
    ``parse`` (mention types pinged from the content: none here), ``users`` and ``roles`` (ids, as
    strings, that may be pinged; ≤ 100 each), ``replied_user``."""

    parse: list[str]
    users: list[str]
    roles: list[str]
    replied_user: bool


def role_mention(role_id: int | None) -> tuple[str | None, AllowedMentions]:
    """Message ``content`` and ``allowed_mentions`` (Discord's Allowed Mentions object) for a post.

    With a role (``/settings mention``): ``("<@&id>", {"parse": [], "roles": ["id"],
    "replied_user": False})`` — the role, and only that role, is pinged. Without:
    ``(None, {"parse": []})`` — nobody is. The deliverer puts the mention on the first
    message of a delivery only (a digest split across messages pings once).
    """
    if not role_id:
        return None, {"parse": []}
    return f"<@&{int(role_id)}>", {"parse": [], "roles": [str(int(role_id))], "replied_user": False}


def forum_post_title(release: Release) -> str:
    """A forum post's title for ``release``: "Artist — Title", the artists named as the embed shows them
    (comma-separated, in the release's order), at most :data:`FORUM_TITLE_LIMIT` characters.

    When it is too long the artist list is cut first ("A, B … and 3 more — Title"), then the title
    ("A — Very long ti…").
    """
    names = [str(a.get("name") or a.get("id") or "") for a in release.artists or () if a.get("name") or a.get("id")]
    title = release.name or "Untitled"
    if not names:
        return _truncate(title, FORUM_TITLE_LIMIT)
    for shown in range(len(names), 0, -1):
        rest = len(names) - shown
        artists = ", ".join(names[:shown]) + (f" … and {rest} more" if rest else "")
        candidate = f"{artists} — {title}"
        if len(candidate) <= FORUM_TITLE_LIMIT:
            return candidate
    return _truncate(f"{names[0]}{' … and more' if len(names) > 1 else ''} — {title}", FORUM_TITLE_LIMIT)
