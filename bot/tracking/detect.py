"""Per-artist change detection at one request per unchanged artist (docs/tracking.md).

Pure logic over a :class:`Fetcher` (which owns the Spotify calls, the per-artist page
cache and the budget gate) and the artist's stored state (``artists.group_state``,
format ``v = 2``)::

    {"v": 2, "groups": ["album", "single", "compilation"],   # tracked union, API order
     "counts": {"album": 12, "single": 40, "compilation": 0},
     "heads": {"album": [newest ids…], …}, "tails": {"album": "<oldest id>", …},
     "total": 52, "window": {"offset": 11, "ids": [ids seen at offset…offset+9]}}

The probe is ``GET /artists/{id}/albums?include_groups=<union>&limit=10&offset=o``
with ``o = 0`` when the whole listing fits in one page, else ``o = count(first group) - 1``:
the window shows the first group's last item (the alignment anchor: any net change
of the first group's count moves it) and the head of the next group (singles, the
most frequent change). Unchanged = same ``total`` and same window ids.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, TypeGuard

from bot.spotify.models import Album, Page

PAGE = 10
STATE_VERSION = 2
ORDER = ("album", "single", "compilation", "appears_on")


class ProbeWindow(TypedDict):
    """Where the probe reads (``offset`` in the union listing) and the ids it saw there (at most ``PAGE``)."""

    offset: int
    ids: list[str]


class GroupState(TypedDict):
    """``artists.group_state`` in format ``v = 2`` (see the module docstring).

    ``groups``: the tracked groups, API order; ``counts``: items per group; ``heads``: each
    group's newest ids (at most ``PAGE``); ``tails``: each group's oldest id (None when not
    read to its end); ``total``: the union listing's length; ``window``: the probe's.
    """

    v: int
    groups: list[str]
    counts: dict[str, int]
    heads: dict[str, list[str]]
    tails: dict[str, str | None]
    total: int
    window: ProbeWindow


class Fetcher(Protocol):
    """What detection needs from the outside: cached pages of one artist's listing (``limit=10``)."""

    async def combined(self, offset: int) -> Page[Album]:
        """The page of the union listing (every tracked group) at ``offset``."""
        ...

    async def exact(self, group: str, offset: int) -> Page[Album]:
        """The page of ``group`` (or of comma-separated groups) at ``offset``."""
        ...


KnownLoader = Callable[[], Awaitable[dict[str, str]]]
"""``async () -> {release id: album group}``: the releases linked to the artist."""


def order_groups(groups: Sequence[str]) -> tuple[str, ...]:
    """``groups`` deduplicated, unknown names dropped, in the API's listing order."""
    wanted = set(groups)
    return tuple(g for g in ORDER if g in wanted)


def probe_offset(groups: Sequence[str], counts: dict[str, int], total: int) -> int:
    """Where the probe window starts.

    0 when the listing fits one page, or when the first group (albums, usually) has
    fewer than ``PAGE`` items: the window then holds that whole group *and* the head of
    the next, so a new album is seen even when another album disappeared in the same
    week. Otherwise the first group's last item, an alignment anchor that any net change
    of that group moves, followed by the next group's head (singles, the most frequent
    change).
    """
    first = int(counts.get(groups[0], 0)) if groups else 0
    if total <= PAGE or not groups or groups[0] == "appears_on" or first < PAGE:
        return 0
    return first - 1


def pages_to_cover(positions: Sequence[int], covered: range) -> int:
    """Fewest ``limit=10`` pages covering ``positions`` outside ``covered`` (greedy, optimal on a line)."""
    pages = 0
    reach = -1
    for p in sorted(set(positions)):
        if p in covered or p <= reach:
            continue
        pages += 1
        reach = p + PAGE - 1
    return pages


@dataclass
class Found:
    """A release newly listed under the artist: ``album``, its ``group``, and whether it landed mid-group."""

    album: Album
    group: str
    back_catalogue: bool = False
    position: int | None = None  # absolute position in the union listing, when known
    group_index: int | None = None  # position inside its group, when read by an exact request


@dataclass
class Detection:
    """The outcome of one artist's check.

    ``changed``: the probe disagreed with the state; ``new``: releases to link as new;
    ``baseline``: releases to link silently (a group tracked for the first time);
    ``state``: the new ``group_state`` (None once it was stored and dropped: nothing to store);
    ``lower_bound``: this artist's share of L;
    ``naive_pages``: pages a whole-catalogue walk at limit 10 would fetch;
    ``fallbacks``: exact per-group requests made because an alignment check failed.
    """

    changed: bool
    state: GroupState | None
    new: list[Found] = field(default_factory=list)
    baseline: list[Found] = field(default_factory=list)
    lower_bound: int = 1
    naive_pages: int = 1
    fallbacks: int = 0
    resynced: bool = False


def is_current(state: dict[str, Any] | None, groups: Sequence[str]) -> TypeGuard[GroupState]:
    """True when ``state`` (the stored ``group_state`` JSON, of any format) is a v2 state for exactly ``groups``."""
    return state is not None and state.get("v") == STATE_VERSION and tuple(state.get("groups") or ()) == tuple(groups)


def _naive(total: int) -> int:
    """Pages a whole-catalogue walk at ``limit=10`` fetches for ``total`` items (at least one)."""
    return max(1, math.ceil(total / PAGE))


class _Listing:
    """Positions of the union listing seen so far (probe and drill pages), fetched on demand."""

    def __init__(self, fetcher: Fetcher, total: int) -> None:
        self.fetcher = fetcher
        self.total = total
        self.items: dict[int, Album] = {}

    def add(self, page: Page[Album]) -> None:
        """Record the items of ``page`` at their positions; the listing's total becomes the page's."""
        for i, album in enumerate(page.items):
            self.items[page.offset + i] = album
        self.total = page.total

    async def at(self, position: int) -> Album | None:
        """The item at ``position`` (None outside the listing), fetching a page from there (or one before) if unseen."""
        if position >= self.total or position < 0:
            return None
        if position not in self.items:
            # One position of slack before: the previous group's last item shows shifts.
            start = position - 1 if position > 0 and (position - 1) not in self.items else position
            self.add(await self.fetcher.combined(start))
        return self.items.get(position)

    def find(self, release_id: str, lowest: int = 0) -> int | None:
        """The position (at or after ``lowest``) where ``release_id`` was seen, or None."""
        for p, album in self.items.items():
            if p >= lowest and album.id == release_id:
                return p
        return None


async def scan_group(
    fetcher: Fetcher, group: str, max_pages: int, *, stop_at_known: set[str] | None = None
) -> tuple[int, list[Album], bool]:
    """Page ``group`` exactly (``include_groups=<group>``, at most ``max_pages`` pages): ``(total, items, complete)``.

    With ``stop_at_known`` it stops after the page holding the first known id.
    """
    items: list[Album] = []
    offset = 0
    total = 0
    for _ in range(max_pages):
        page = await fetcher.exact(group, offset)
        total = page.total
        items.extend(page.items)
        if stop_at_known is not None and any(a.id in stop_at_known for a in page.items):
            return total, items, len(items) >= total
        if not page.next or not page.items or len(items) >= total:
            return total, items, True
        offset += len(page.items)
    return total, items, len(items) >= total


async def resync(
    fetcher: Fetcher, groups: Sequence[str], known: dict[str, str], *, head_new: set[str], max_pages: int
) -> Detection:
    """Read every tracked group whole (baseline, a newly tracked group, an old-format state).

    For a group in ``head_new`` that already has known releases, the unknown items
    before its first known one are new (it was tracked before); every other unknown
    item is recorded silently (baseline). The union window is computed from the
    groups' concatenation, so no extra request is needed.
    """
    new: list[Found] = []
    baseline: list[Found] = []
    listing: list[str] = []
    counts: dict[str, int] = {}
    heads: dict[str, list[str]] = {}
    tails: dict[str, str | None] = {}
    for g in groups:
        total, items, _complete = await scan_group(fetcher, g, max_pages)
        counts[g] = total
        heads[g] = [a.id for a in items[:PAGE]]
        tails[g] = items[-1].id if items and len(items) >= total else None
        group_known = any(grp == g for grp in known.values())
        seen_known = False
        for i, album in enumerate(items):
            if album.id in known:
                seen_known = True
                continue
            found = Found(album, g, position=len(listing) + i)
            if g in head_new and group_known and not seen_known and g != "appears_on":
                new.append(found)
            else:
                baseline.append(found)
        listing.extend(a.id for a in items)
    state = _whole_state(groups, counts, heads, tails, listing)
    return Detection(
        changed=True,
        state=state,
        new=new,
        baseline=baseline,
        lower_bound=1,
        naive_pages=_naive(state["total"]),
        resynced=True,
    )


def _whole_state(
    groups: Sequence[str],
    counts: dict[str, int],
    heads: dict[str, list[str]],
    tails: dict[str, str | None],
    listing: list[str],
) -> GroupState:
    """The v2 state of a listing read whole: ``listing`` is the union's ids in API order."""
    total = sum(counts.values())
    offset = probe_offset(groups, counts, total)
    return {
        "v": STATE_VERSION,
        "groups": list(groups),
        "counts": counts,
        "heads": heads,
        "tails": tails,
        "total": total,
        "window": {"offset": offset, "ids": listing[offset : offset + PAGE]},
    }


async def _read_listing(fetcher: Fetcher, include: str, max_pages: int) -> tuple[int, list[Album]] | None:
    """Page the listing of ``include`` (comma-separated groups) whole: ``(total, items)``, None when incomplete."""
    items: list[Album] = []
    total = 0
    for _ in range(max_pages):
        page = await fetcher.exact(include, len(items))
        total = page.total
        items.extend(page.items)
        if not page.items or len(items) >= total:
            break
    return (total, items) if len(items) == total else None


async def _read_tracked(
    fetcher: Fetcher, groups: Sequence[str], max_pages: int
) -> tuple[dict[str, list[Album]], dict[str, int]]:
    """Read the tracked listing whole for :func:`recheck`: ``({group: items}, {group: count})``.

    The album, single and compilation groups as one listing split by ``album_type`` when it
    is grouped as the API documents it, else each on its own; ``appears_on`` on its own.
    """
    own = [g for g in groups if g != "appears_on"]
    per_group: dict[str, list[Album]] = {}
    counts: dict[str, int] = {}
    if own:
        read = await _read_listing(fetcher, ",".join(own), max_pages)
        items = read[1] if read is not None else []
        grouped = (
            read is not None
            and all(a.album_type in own for a in items)
            and [own.index(a.album_type) for a in items] == sorted(own.index(a.album_type) for a in items)
        )
        if grouped:
            for g in own:
                per_group[g] = [a for a in items if a.album_type == g]
                counts[g] = len(per_group[g])
        else:
            for g in own:
                counts[g], per_group[g], _ = await scan_group(fetcher, g, max_pages)
    if "appears_on" in groups:
        counts["appears_on"], per_group["appears_on"], _ = await scan_group(fetcher, "appears_on", max_pages)
    return per_group, counts


async def recheck(fetcher: Fetcher, groups: Sequence[str], known: dict[str, str], *, max_pages: int) -> Detection:
    """The rotating exact re-check (docs/tracking.md, "Recall"): read the tracked listing whole.

    Every id not linked to the artist yet (``known``: ``{release id: album group}``) is
    new, wherever it is listed: a release the one-request probe could not see (a removal
    balancing an addition outside the window, a back-catalogue or ``appears_on`` item) is
    announced now, late instead of never. Items below a known one in their group are
    flagged ``back_catalogue``. Cost: the album, single and compilation groups are read
    as one listing (``include_groups=album,single,compilation``, ⌈T/10⌉ pages, the first
    being the offset-0 probe of an artist with T ≤ 10), split by ``album_type``;
    ``appears_on`` (unordered, and its items carry their own ``album_type``) is read
    with ``include_groups=appears_on``. If the combined listing is not grouped as the API
    documents it, each group is read on its own instead. Raises what the fetcher raises.
    """
    per_group, counts = await _read_tracked(fetcher, groups, max_pages)
    new: list[Found] = []
    listing: list[str] = []
    heads: dict[str, list[str]] = {}
    tails: dict[str, str | None] = {}
    for g in groups:
        items = per_group.get(g, [])
        heads[g] = [a.id for a in items[:PAGE]]
        tails[g] = items[-1].id if items and len(items) >= counts[g] else None
        seen_known = False
        for i, album in enumerate(items):
            if album.id in known:
                seen_known = True
                continue
            new.append(
                Found(
                    album, g, back_catalogue=seen_known and g != "appears_on", position=len(listing) + i, group_index=i
                )
            )
        listing.extend(a.id for a in items)
    state = _whole_state(groups, counts, heads, tails, listing)
    return Detection(
        changed=bool(new),
        state=state,
        new=new,
        lower_bound=1 + pages_to_cover([f.position for f in new if f.position is not None], range(PAGE)),
        naive_pages=_naive(state["total"]),
        resynced=True,
    )


# --- detect: one artist's check against its stored state ------------------------------------


@dataclass
class _Drill:
    """What the phases of :func:`detect` share once the probe disagreed with the stored state.

    From the stored state: ``groups`` (tracked, API order), ``stored_counts`` (each group's
    count at the last check); ``heads`` (newest ids per group) and ``tails`` (oldest id per
    group) start as stored and are updated as groups are read. ``known``: ``{release id:
    album group}`` linked to the artist. ``listing``: the union listing's positions fetched
    so far; ``total``: its total now (the probe's). ``anchor_ok``: the first group's last
    item is still where the stored state put it (:func:`_anchor_holds`).

    Placed by a walk (:func:`_walk`, reset at its start): ``counts`` (each group's count
    now), ``starts`` (its first position in the union listing), ``new`` (its new releases),
    ``exact_done`` (groups read by an exact request), ``removal`` (a release was seen
    leaving a group). ``fallbacks`` counts the exact group reads of every walk.
    """

    fetcher: Fetcher
    max_pages: int
    groups: tuple[str, ...]
    stored_counts: dict[str, int]
    heads: dict[str, list[str]]
    tails: dict[str, str | None]
    known: dict[str, str]
    listing: _Listing
    total: int
    anchor_ok: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)
    new: dict[str, list[Found]] = field(default_factory=dict)
    exact_done: set[str] = field(default_factory=set)
    fallbacks: int = 0
    removal: bool = False

    @property
    def first(self) -> str | None:
        """The first tracked group (albums, usually), or None when no group is tracked."""
        return self.groups[0] if self.groups else None

    def unknown(self, album: Album) -> bool:
        """``album`` is not linked to the artist yet."""
        return album.id not in self.known

    def start_walk(self) -> None:
        """Forget what an earlier walk placed (the heads, tails and fallbacks it read are kept)."""
        self.counts.clear()
        self.starts.clear()
        self.exact_done.clear()
        self.new = {g: [] for g in self.groups}
        self.removal = False


async def detect(fetcher: Fetcher, state: GroupState, known_loader: KnownLoader, *, max_pages: int) -> Detection:
    """One artist's check against a current v2 ``state`` (see module docstring and docs/tracking.md).

    ``known_loader``: ``async () -> {release id: album group}`` of the releases linked
    to the artist; called only when the probe says something changed. Phases: the probe
    (:func:`_probe_agrees`: one request, unchanged → done), the anchor check
    (:func:`_anchor_holds`), the walk placing every group's boundary (:func:`_walk`; again
    without shortcuts when a removal was seen behind one), and the new state with the
    lower bound (:func:`_conclude`). Raises what the fetcher raises.
    """
    groups: tuple[str, ...] = tuple(state["groups"])
    counts: dict[str, int] = {g: int(state["counts"].get(g, 0)) for g in groups}
    heads: dict[str, list[str]] = {g: list(state.get("heads", {}).get(g) or []) for g in groups}
    tails: dict[str, str | None] = dict(state.get("tails") or {})
    total = int(state.get("total", sum(counts.values())))
    window = state.get("window")
    o = probe_offset(groups, counts, total)

    probe = await fetcher.combined(o)
    if window and _probe_agrees(probe, o, total, window):
        return Detection(changed=False, state=state.copy(), naive_pages=_naive(probe.total))

    listing = _Listing(fetcher, probe.total)
    listing.add(probe)
    d = _Drill(
        fetcher=fetcher,
        max_pages=max_pages,
        groups=groups,
        stored_counts=counts,
        heads=heads,
        tails=tails,
        known=await known_loader(),
        listing=listing,
        total=probe.total,
    )
    d.new = {g: [] for g in groups}
    d.anchor_ok = _anchor_holds(d, o)
    unknown_in_probe = sum(1 for a in probe.items if d.unknown(a))
    trust = probe.total - total >= unknown_in_probe  # fewer than the visible additions: something was removed
    removed, shortcut = await _walk(d, trust)
    if removed and shortcut:
        await _walk(d, False)  # a removal can hide an addition behind a shortcut: no shortcuts
    return await _conclude(d, range(o, o + len(probe.items)))


def _probe_agrees(probe: Page[Album], offset: int, total: int, window: ProbeWindow) -> bool:
    """The probe at ``offset`` shows the stored ``total`` and starts with the stored window's ids: unchanged."""
    ids = [a.id for a in probe.items]
    stored_ids = list(window.get("ids") or [])
    return (
        probe.total == total
        and window.get("offset") == offset
        and len(ids) >= len(stored_ids)
        and ids[: len(stored_ids)] == stored_ids
        and bool(stored_ids or probe.total == 0)
    )


def _anchor_holds(d: _Drill, offset: int) -> bool:
    """The first group's stored last item is still at the probe ``offset``, and nothing of that group follows it.

    Then the first group kept its count (any net change of it moves that item), and the
    walk may place it without reading it.
    """
    g0 = d.first
    if g0 is None or g0 == "appears_on" or d.stored_counts[g0] < 1 or offset != d.stored_counts[g0] - 1:
        return False
    if not d.tails.get(g0):
        return False
    first = d.listing.items.get(offset)
    after = d.listing.items.get(offset + 1)
    if first is None or first.id != d.tails[g0]:
        return False
    if after is None:
        return True
    if d.unknown(after):
        return after.album_type != g0
    return d.known.get(after.id) != g0


async def _walk(d: _Drill, shortcuts: bool) -> tuple[bool, bool]:
    """Place every group's boundary in the union listing; returns (a removal was seen, a shortcut was taken).

    Group by group from position 0: the anchored first group is placed from the stored
    state; a tail whose stored counts still add up to the total (with no unknown item
    seen in it and the known items where the layout puts them) is kept as stored; every
    other group is read at its boundary (:func:`_place_group`). ``shortcuts`` False reads
    every group (after a removal was seen behind a shortcut).
    """
    d.start_walk()
    anchored = d.anchor_ok and shortcuts
    used = False
    pos = 0
    skipped_tail = False
    for j, g in enumerate(d.groups):
        d.starts[g] = pos
        if j == 0 and anchored:
            d.counts[g] = d.stored_counts[g]
            pos += d.stored_counts[g]
            continue
        if shortcuts and _tail_unchanged(d, j, pos):
            pos = _keep_tail(d, j, pos)
            skipped_tail = True
            used = True
            break
        if g == "appears_on":
            await _read_exact(d, g)
            pos += d.counts[g]
            continue
        pos = await _place_group(d, j, pos, shortcuts=shortcuts, anchored=anchored)
    if not skipped_tail and pos != d.total:
        await _check_end(d, pos)
    return d.removal, used or anchored


def _tail_unchanged(d: _Drill, j: int, pos: int) -> bool:
    """Groups ``j…`` may keep their stored counts: they add up to the total from ``pos``, no unknown
    item was seen from ``pos`` on, and the known items seen sit where that layout puts them."""
    rest = sum(d.stored_counts[h] for h in d.groups[j:])
    return (
        pos + rest == d.total
        and not any(p >= pos and d.unknown(a) for p, a in d.listing.items.items())
        and _layout_holds(d, j, pos)
    )


def _keep_tail(d: _Drill, j: int, pos: int) -> int:
    """Place groups ``j…`` from ``pos`` with their stored counts; returns the position after them."""
    for h in d.groups[j:]:
        d.starts[h] = pos
        d.counts[h] = d.stored_counts[h]
        pos += d.stored_counts[h]
    return pos


def _layout_holds(d: _Drill, j: int, pos: int) -> bool:
    """Every known item fetched so far sits in the group the layout puts there.

    The layout is the groups placed so far (``starts``/``counts``) followed by the
    stored counts from ``pos`` on. The tail shortcut trusts the stored counts; a known
    item seen in another group's range (a removal shifted a boundary while an addition
    balanced the total) means they no longer hold, even though the total does.
    """
    ranges: list[tuple[int, int, str]] = [(d.starts[h], d.starts[h] + d.counts[h], h) for h in d.groups[:j]]
    start = pos
    for h in d.groups[j:]:
        ranges.append((start, start + d.stored_counts[h], h))
        start += d.stored_counts[h]
    for p, a in d.listing.items.items():
        if d.unknown(a):
            continue
        expected = next((h for lo, hi, h in ranges if lo <= p < hi), None)
        if d.known.get(a.id) != expected:
            return False
    return True


async def _place_group(d: _Drill, j: int, pos: int, *, shortcuts: bool, anchored: bool) -> int:
    """Place group ``j`` (not ``appears_on``) starting at ``pos``; returns the position after it.

    Reads the head at ``pos`` (:func:`_read_head`). A group empty until now takes the
    leading unknown items of its type. Otherwise, when the boundary before ``pos`` holds
    and the head ends on the group's stored newest id, the unknown items before it are
    new. Else the boundary moved: it is found from the stored head's position
    (:func:`_realign`), or the group (and the previous non-empty one) is read exactly
    (:func:`_reread`).
    """
    g = d.groups[j]
    unknowns, known_item = await _read_head(d, pos)
    if d.stored_counts[g] == 0:
        return _place_first_releases(d, g, pos, unknowns)
    head = d.heads[g][0] if d.heads[g] else None
    if (
        await _boundary_ok(d, g, pos, shortcuts)
        and known_item is not None
        and head is not None
        and known_item.id == head
        and all(a.album_type == g for a in unknowns)
    ):
        d.new[g] = [Found(a, g, position=pos + i) for i, a in enumerate(unknowns)]
        d.counts[g] = d.stored_counts[g] + len(unknowns)
        return pos + d.counts[g]
    prev = _previous_nonempty(d, j)
    moved = await _realign(d, j, pos, head, prev, anchored)
    if moved is not None:
        return moved
    return await _reread(d, j, pos, prev)


async def _read_head(d: _Drill, pos: int) -> tuple[list[Album], Album | None]:
    """The unknown items from ``pos`` on, up to the first known one: ``(unknowns, that known item or None)``."""
    unknowns: list[Album] = []
    p = pos
    while p < d.total and len(unknowns) < d.max_pages * PAGE:
        album = await d.listing.at(p)
        if album is None:
            break
        if not d.unknown(album):
            return unknowns, album
        unknowns.append(album)
        p += 1
    return unknowns, None


def _place_first_releases(d: _Drill, g: str, pos: int, unknowns: list[Album]) -> int:
    """Group ``g`` had no release: its new ones are the leading ``unknowns`` of its type; returns the position after."""
    lead: list[Album] = []
    for a in unknowns:
        if a.album_type != g:
            break
        lead.append(a)
    d.new[g] = [Found(a, g, position=pos + i) for i, a in enumerate(lead)]
    d.counts[g] = len(lead)
    return pos + d.counts[g]


async def _boundary_ok(d: _Drill, g: str, pos: int, shortcuts: bool) -> bool:
    """The item just before ``pos`` belongs to an earlier group than ``g``.

    Checked when that item was fetched already, and always (fetching it) without
    ``shortcuts``, when a removal may have moved the boundary.
    """
    before = d.listing.items.get(pos - 1) if pos > 0 else None
    if before is None and pos > 0 and not shortcuts:
        before = await d.listing.at(pos - 1)
    if before is None:
        return True
    if d.unknown(before):
        return before.album_type != g
    return d.known.get(before.id, g) != g


def _previous_nonempty(d: _Drill, j: int) -> str | None:
    """The last group before group ``j`` placed with at least one release, or None."""
    for h in reversed(d.groups[:j]):
        if d.counts.get(h, 0) > 0:
            return h
    return None


async def _realign(d: _Drill, j: int, pos: int, head: str | None, prev: str | None, anchored: bool) -> int | None:
    """Move the boundary between ``prev`` and group ``j`` to where ``j``'s stored ``head`` is now listed.

    Items of ``j``'s type just before that id are ``j``'s new releases. The boundary came
    earlier: ``prev`` lost releases (a removal). It came later: ``prev`` grew mid-group
    (a back-catalogue addition), read exactly. Returns the position after group ``j``,
    or None when the boundary could not be placed this way.
    """
    g = d.groups[j]
    q = d.listing.find(head, d.starts.get(prev, 0) if prev is not None else 0) if head is not None else None
    if q is None or prev is None or (prev == d.first and anchored) or prev in d.exact_done:
        return None
    lead = 0
    while (q - lead - 1) in d.listing.items and q - lead - 1 >= d.starts[prev]:
        a = d.listing.items[q - lead - 1]
        if d.unknown(a) and a.album_type == g:
            lead += 1
        else:
            break
    start_g = q - lead
    delta = start_g - pos
    new_prev = d.counts[prev] + delta
    if delta < 0 and new_prev >= len(d.new[prev]):
        d.counts[prev] = new_prev  # the previous group lost releases (removal)
        d.removal = True
    elif delta > 0:
        await _read_exact(d, prev)  # the previous group grew mid-group (back catalogue)
        if d.starts[prev] + d.counts[prev] != start_g:
            return None
    else:
        return None
    d.starts[g] = start_g
    d.new[g] = [Found(d.listing.items[start_g + i], g, position=start_g + i) for i in range(lead)]
    d.counts[g] = d.stored_counts[g] + lead
    return start_g + d.counts[g]


async def _reread(d: _Drill, j: int, pos: int, prev: str | None) -> int:
    """Read group ``j`` exactly, after the previous non-empty group ``prev`` (re-placing the groups between);
    returns the position after group ``j``."""
    g = d.groups[j]
    if prev is not None and prev not in d.exact_done:
        await _read_exact(d, prev)
        pos = d.starts[prev] + d.counts[prev]
        for h in d.groups[d.groups.index(prev) + 1 : j]:
            d.starts[h] = pos
            pos += d.counts.get(h, 0)
    await _read_exact(d, g)
    d.starts[g] = pos
    return pos + d.counts[g]


async def _check_end(d: _Drill, pos: int) -> None:
    """The groups placed end at ``pos``, not at the total: settle the last non-empty group's end.

    Its end is checked only by the total: a shortfall within what it can lose is a
    removal; anything else reads it exactly, and every group not read yet when the
    counts still do not add up.
    """
    last = None
    for h in reversed(d.groups):
        if d.counts.get(h, 0) > 0 and h not in d.exact_done:
            last = h
            break
    delta = d.total - pos
    if last is not None and delta < 0 and d.counts[last] + delta >= len(d.new[last]) and last != "appears_on":
        d.counts[last] += delta
    elif last is not None:
        await _read_exact(d, last)
    if sum(d.counts.values()) != d.total:
        for h in d.groups:
            if h not in d.exact_done:
                await _read_exact(d, h)


async def _read_exact(d: _Drill, g: str) -> None:
    """Authoritative read of group ``g`` (``include_groups=<g>``): its count, its new releases, its head and tail."""
    d.fallbacks += 1
    if g == "appears_on":
        total_g, items, _ = await scan_group(d.fetcher, g, d.max_pages)
        d.new[g] = [Found(a, g, group_index=i) for i, a in enumerate(items) if d.unknown(a)]
    else:
        total_g = await _read_own_group(d, g)
    d.counts[g] = total_g
    d.exact_done.add(g)


async def _read_own_group(d: _Drill, g: str) -> int:
    """Read group ``g`` (album, single or compilation) down to its first known release; returns its count.

    The unknown items before that one are new. When the group grew by more than that
    head, something landed mid-group: the group is read whole and every other unknown
    item is new too, flagged ``back_catalogue``. A count below what the head explains is
    a removal. Updates the group's head, and its tail when read to the end.
    """
    total_g, items, _ = await scan_group(d.fetcher, g, d.max_pages, stop_at_known=set(d.known))
    head: list[Found] = []
    for i, a in enumerate(items):
        if not d.unknown(a):
            break
        head.append(Found(a, g, group_index=i))
    if total_g > d.stored_counts[g] + len(head):
        # Grew by more than its head shows: something landed mid-group (back catalogue).
        total_g, items, _ = await scan_group(d.fetcher, g, d.max_pages)
        head_ids = {f.album.id for f in head}
        head.extend(
            Found(a, g, back_catalogue=True, group_index=i)
            for i, a in enumerate(items)
            if d.unknown(a) and a.id not in head_ids
        )
    if total_g < d.stored_counts[g] + len(head):
        d.removal = True
    d.new[g] = head
    if items:
        d.heads[g] = [a.id for a in items[:PAGE]]
        if len(items) >= total_g:
            d.tails[g] = items[-1].id
    return total_g


async def _conclude(d: _Drill, probe_range: range) -> Detection:
    """The detection of a changed artist: its new releases with positions, the new state, the lower bound.

    The groups are laid out from their placed counts; when they add up to the total the
    layout is ``consistent`` and positions, the first group's tail and the probe window
    are derived from it (one more request when fewer than two window ids were seen).
    """
    pos = 0
    for g in d.groups:
        d.starts[g] = pos
        pos += d.counts.get(g, 0)
    consistent = pos == d.total
    positions: dict[int, str] = {p: a.id for p, a in d.listing.items.items()}
    found, needed = _collect_found(d, consistent)
    if consistent and d.groups:
        _update_first_tail(d, positions)
    o2 = probe_offset(d.groups, d.counts, d.total)
    window_ids = await _window_ids(d, positions, o2, consistent)
    new_state: GroupState = {
        "v": STATE_VERSION,
        "groups": list(d.groups),
        "counts": {g: d.counts.get(g, 0) for g in d.groups},
        "heads": d.heads,
        "tails": d.tails,
        "total": pos if consistent else sum(d.counts.values()),
        "window": {"offset": o2, "ids": window_ids if consistent else []},
    }
    lower = 1 + pages_to_cover(needed, probe_range)
    return Detection(
        changed=True,
        state=new_state,
        new=found,
        lower_bound=lower,
        naive_pages=_naive(d.total),
        fallbacks=d.fallbacks,
    )


def _collect_found(d: _Drill, consistent: bool) -> tuple[list[Found], list[int]]:
    """The new releases (each once, group by group) and the listing positions a reader needs to reach them.

    Fills in positions where the layout is ``consistent``; a group's new head items are
    reached with its newest known release, so that one's position is needed too. Puts
    the new head items in front of the group's stored ``heads``.
    """
    needed: list[int] = []
    found: list[Found] = []
    seen: set[str] = set()
    for g in d.groups:
        head_count = 0
        for f in d.new[g]:
            if f.album.id in seen:
                continue
            seen.add(f.album.id)
            if f.position is None and consistent:
                f.position = d.listing.find(f.album.id)
                if f.position is None and f.group_index is not None:
                    f.position = d.starts[g] + f.group_index
            found.append(f)
            if not f.back_catalogue and g != "appears_on":
                head_count += 1
            elif f.position is not None:
                needed.append(f.position)
        if d.new[g] and g != "appears_on":
            # Reaching the newest known release of the group: head items + that one.
            needed.extend(range(d.starts[g], d.starts[g] + min(head_count + 1, max(d.counts[g], head_count))))
            if head_count and not (d.heads[g] and d.new[g][0].album.id == d.heads[g][0]):
                d.heads[g] = ([f.album.id for f in d.new[g][:head_count]] + d.heads[g])[:PAGE]
        elif d.new[g]:
            needed.append(d.starts[g])  # appears_on: at least one page of it
    return found, needed


def _update_first_tail(d: _Drill, positions: dict[int, str]) -> None:
    """The first group's tail (its oldest id) from the listing, or unknown (None) when its count changed unseen."""
    g0 = d.first
    if g0 is None:
        return
    last_pos = d.counts[g0] - 1 if d.counts.get(g0) else None
    if last_pos is not None and last_pos in positions:
        d.tails[g0] = positions[last_pos]
    elif d.counts.get(g0) != d.stored_counts.get(g0):
        d.tails[g0] = None


async def _window_ids(d: _Drill, positions: dict[int, str], offset: int, consistent: bool) -> list[str]:
    """The ids of the next probe window at ``offset``: from the positions seen, or one request when
    fewer than two of them were seen (and the layout is consistent)."""
    window_ids: list[str] = []
    for p in range(offset, min(offset + PAGE, d.total)):
        if p not in positions:
            break
        window_ids.append(positions[p])
    if consistent and len(window_ids) < min(2, d.total - offset):
        page = await d.fetcher.combined(offset)
        window_ids = [a.id for a in page.items]
    return window_ids
