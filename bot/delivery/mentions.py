"""Who a post mentions, and how the mentions are split within Discord's limits.

A post's content mentions the guild's role (``/settings mention``, if set and if this post carries
it) and every member subscribed in ``mention`` mode to an artist of the post's releases
(``storage.members.subscribers``), each once, in the order their artists appear; its
``allowed_mentions`` lists exactly those users and that role, so nobody else is pinged whatever the
content says (Discord API reference, "Message Resource" > "Allowed Mentions Object").

Discord's limits: content ≤ 2,000 characters (:data:`CONTENT_LIMIT`) and ≤ 100 ids in each
allowed-mentions list (:data:`IDS_PER_LIST`). What does not fit in the post goes, in order, into
follow-up messages (parts 1, 2, …) in the same channel (a forum post's thread), each within the
same limits; the deliverer posts each part exactly once (``storage.mention_ledger``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.delivery.render import AllowedMentions
from storage.members import Subscriber
from storage.mention_ledger import Part

CONTENT_LIMIT = 2000
IDS_PER_LIST = 100


@dataclass(frozen=True)
class Mentions:
    """The mentions of one post: ``content`` and ``allowed_mentions`` of the post itself (None, None:
    it mentions nobody), and the follow-up ``parts`` carrying the users that did not fit."""

    content: str | None = None
    allowed_mentions: AllowedMentions | None = None
    parts: tuple[Part, ...] = field(default_factory=tuple)

    @property
    def user_ids(self) -> list[int]:
        """Every user this post and its follow-ups ping, in order."""
        head = [int(u) for u in (self.allowed_mentions or {}).get("users", [])]
        return head + [u for p in self.parts for u in p.user_ids]


def mention_users(artist_ids: Iterable[str], subscribers: Mapping[str, Sequence[Subscriber]]) -> list[int]:
    """The members to mention for a post whose releases credit ``artist_ids`` (in order): those
    subscribed in ``mention`` mode to any of them, each once, in the order of their artists (then
    by user id, as ``storage.members.subscribers`` lists them)."""
    users: dict[int, None] = {}
    for artist_id in artist_ids:
        for sub in subscribers.get(artist_id, ()):
            if sub.mode == "mention":
                users.setdefault(sub.user_id, None)
    return list(users)


def dm_users(artist_ids: Iterable[str], subscribers: Mapping[str, Sequence[Subscriber]]) -> list[int]:
    """The members subscribed in ``dm`` mode to any of ``artist_ids``, each once, in order."""
    users: dict[int, None] = {}
    for artist_id in artist_ids:
        for sub in subscribers.get(artist_id, ()):
            if sub.mode == "dm":
                users.setdefault(sub.user_id, None)
    return list(users)


def plan_mentions(user_ids: Sequence[int], role_id: int | None) -> Mentions:
    """Split the mentions of ``user_ids`` (and of ``role_id`` when given) into the post's content and
    follow-up parts, each ≤ :data:`CONTENT_LIMIT` characters and ≤ :data:`IDS_PER_LIST` users.

    The role goes first, in the post. Mentions are separated by a space. With neither users nor a
    role the post mentions nobody (``Mentions()``).
    """
    if not user_ids and not role_id:
        return Mentions()
    head = [f"<@&{int(role_id)}>"] if role_id else []
    chunks = _chunk([f"<@{int(u)}>" for u in user_ids], [int(u) for u in user_ids], first=head)
    first_users, first_text = chunks[0]
    allowed: AllowedMentions = {"parse": [], "users": [str(u) for u in first_users], "replied_user": False}
    if role_id:
        allowed["roles"] = [str(int(role_id))]
    parts = tuple(
        Part(part=i, content=text, user_ids=tuple(users)) for i, (users, text) in enumerate(chunks[1:], start=1)
    )
    return Mentions(content=first_text, allowed_mentions=allowed, parts=parts)


def part_allowed_mentions(part: Part) -> AllowedMentions:
    """The allowed mentions of a follow-up: exactly its users."""
    return {"parse": [], "users": [str(u) for u in part.user_ids], "replied_user": False}


def _chunk(tokens: list[str], users: list[int], *, first: list[str]) -> list[tuple[list[int], str]]:
    """Greedy, in order: ``[(users, content), …]``, the first chunk starting with ``first`` (the role)."""
    out: list[tuple[list[int], str]] = []
    text = " ".join(first)
    chunk_users: list[int] = []
    for token, user in zip(tokens, users, strict=True):
        candidate = f"{text} {token}" if text else token
        if len(candidate) > CONTENT_LIMIT or len(chunk_users) >= IDS_PER_LIST:
            out.append((chunk_users, text))
            text, chunk_users = token, []
            candidate = token
        text = candidate
        chunk_users.append(user)
    out.append((chunk_users, text))
    return out
