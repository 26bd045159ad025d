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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

PAGE = 10
STATE_VERSION = 2
ORDER = ("album", "single", "compilation", "appears_on")


class Fetcher(Protocol):
    """What detection needs from the outside: cached pages of one artist's listing."""

    async def combined(self, offset: int) -> Any: ...  # Page of the union listing at offset (limit 10)

    async def exact(self, group: str, offset: int) -> Any: ...  # Page of one group at offset


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

    album: Any
    group: str
    back_catalogue: bool = False
    position: int | None = None  # absolute position in the union listing, when known
    group_index: int | None = None  # position inside its group, when read by an exact request


@dataclass
class Detection:
    """The outcome of one artist's check.

    ``changed``: the probe disagreed with the state; ``new``: releases to link as new;
    ``baseline``: releases to link silently (a group tracked for the first time);
    ``state``: the new ``group_state``; ``lower_bound``: this artist's share of L;
    ``naive_pages``: pages a whole-catalogue walk at limit 10 would fetch;
    ``fallbacks``: exact per-group requests made because an alignment check failed.
    """

    changed: bool
    state: dict[str, Any]
    new: list[Found] = field(default_factory=list)
    baseline: list[Found] = field(default_factory=list)
    lower_bound: int = 1
    naive_pages: int = 1
    fallbacks: int = 0
    resynced: bool = False


def is_current(state: dict[str, Any] | None, groups: Sequence[str]) -> bool:
    """True when ``state`` is a v2 state for exactly ``groups``."""
    return bool(state) and state.get("v") == STATE_VERSION and tuple(state.get("groups") or ()) == tuple(groups)


def _naive(total: int) -> int:
    return max(1, math.ceil(total / PAGE))


class _Listing:
    """Positions of the union listing seen so far (probe and drill pages), fetched on demand."""

    def __init__(self, fetcher: Fetcher, total: int) -> None:
        self.fetcher = fetcher
        self.total = total
        self.items: dict[int, Any] = {}

    def add(self, page: Any) -> None:
        for i, album in enumerate(page.items):
            self.items[page.offset + i] = album
        self.total = page.total

    async def at(self, position: int) -> Any | None:
        if position >= self.total or position < 0:
            return None
        if position not in self.items:
            # One position of slack before: the previous group's last item shows shifts.
            start = position - 1 if position > 0 and (position - 1) not in self.items else position
            self.add(await self.fetcher.combined(start))
        return self.items.get(position)

    def find(self, release_id: str, lowest: int = 0) -> int | None:
        for p, album in self.items.items():
            if p >= lowest and album.id == release_id:
                return p
        return None


async def scan_group(
    fetcher: Fetcher, group: str, max_pages: int, *, stop_at_known: set[str] | None = None
) -> tuple[int, list[Any], bool]:
    """Page ``group`` exactly (``include_groups=<group>``): ``(total, items, complete)``.

    With ``stop_at_known`` it stops after the page holding the first known id.
    """
    items: list[Any] = []
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
    det = Detection(changed=True, state={}, resynced=True)
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
                det.new.append(found)
            else:
                det.baseline.append(found)
        listing.extend(a.id for a in items)
    det.state = _whole_state(groups, counts, heads, tails, listing)
    det.naive_pages = _naive(det.state["total"])
    det.lower_bound = 1
    return det


def _whole_state(
    groups: Sequence[str],
    counts: dict[str, int],
    heads: dict[str, list[str]],
    tails: dict[str, str | None],
    listing: list[str],
) -> dict[str, Any]:
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


async def _read_listing(fetcher: Fetcher, include: str, max_pages: int) -> tuple[int, list[Any]] | None:
    """Page the listing of ``include`` (comma-separated groups) whole: ``(total, items)``, None when incomplete."""
    items: list[Any] = []
    total = 0
    for _ in range(max_pages):
        page = await fetcher.exact(include, len(items))
        total = page.total
        items.extend(page.items)
        if not page.items or len(items) >= total:
            break
    return (total, items) if len(items) == total else None


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
    own = [g for g in groups if g != "appears_on"]
    per_group: dict[str, list[Any]] = {}
    counts: dict[str, int] = {}
    if own:
        read = await _read_listing(fetcher, ",".join(own), max_pages)
        grouped = (
            read is not None
            and all(a.album_type in own for a in read[1])
            and [own.index(a.album_type) for a in read[1]] == sorted(own.index(a.album_type) for a in read[1])
        )
        if grouped:
            for g in own:
                per_group[g] = [a for a in read[1] if a.album_type == g]
                counts[g] = len(per_group[g])
        else:
            for g in own:
                counts[g], per_group[g], _ = await scan_group(fetcher, g, max_pages)
    if "appears_on" in groups:
        counts["appears_on"], per_group["appears_on"], _ = await scan_group(fetcher, "appears_on", max_pages)
    det = Detection(changed=False, state={}, resynced=True)
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
            det.new.append(
                Found(
                    album, g, back_catalogue=seen_known and g != "appears_on", position=len(listing) + i, group_index=i
                )
            )
        listing.extend(a.id for a in items)
    det.state = _whole_state(groups, counts, heads, tails, listing)
    det.changed = bool(det.new)
    det.naive_pages = _naive(det.state["total"])
    det.lower_bound = 1 + pages_to_cover([f.position for f in det.new if f.position is not None], range(PAGE))
    return det


async def detect(fetcher: Fetcher, state: dict[str, Any], known_loader, *, max_pages: int) -> Detection:
    """One artist's check against a current v2 ``state`` (see module docstring and docs/tracking.md).

    ``known_loader``: ``async () -> {release id: album group}`` of the releases linked
    to the artist; called only when the probe says something changed.
    """
    groups: tuple[str, ...] = tuple(state["groups"])
    counts: dict[str, int] = {g: int(state["counts"].get(g, 0)) for g in groups}
    heads: dict[str, list[str]] = {g: list(state.get("heads", {}).get(g) or []) for g in groups}
    tails: dict[str, str | None] = dict(state.get("tails") or {})
    total = int(state.get("total", sum(counts.values())))
    window = state.get("window") or {}
    o = probe_offset(groups, counts, total)

    probe = await fetcher.combined(o)
    t2 = probe.total
    ids = [a.id for a in probe.items]
    stored_ids = list(window.get("ids") or [])
    if (
        t2 == total
        and window.get("offset") == o
        and len(ids) >= len(stored_ids)
        and ids[: len(stored_ids)] == stored_ids
        and (stored_ids or t2 == 0)
    ):
        new_state = dict(state)
        return Detection(changed=False, state=new_state, naive_pages=_naive(t2))

    known = await known_loader()
    listing = _Listing(fetcher, t2)
    listing.add(probe)
    probe_range = range(o, o + len(probe.items))

    def unknown(album: Any) -> bool:
        return album.id not in known

    counts2: dict[str, int] = {}
    starts: dict[str, int] = {}
    new: dict[str, list[Found]] = {g: [] for g in groups}
    exact_done: set[str] = set()
    fallbacks = 0
    removal = [False]

    async def exact(g: str) -> None:
        """Authoritative read of group ``g``: its count, its new head, and a full scan if it grew mid-group."""
        nonlocal fallbacks
        fallbacks += 1
        if g == "appears_on":
            total_g, items, _ = await scan_group(fetcher, g, max_pages)
            new[g] = [Found(a, g, group_index=i) for i, a in enumerate(items) if unknown(a)]
        else:
            total_g, items, _ = await scan_group(fetcher, g, max_pages, stop_at_known=set(known))
            head: list[Found] = []
            for i, a in enumerate(items):
                if not unknown(a):
                    break
                head.append(Found(a, g, group_index=i))
            if total_g > counts[g] + len(head):
                # Grew by more than its head shows: something landed mid-group (back catalogue).
                total_g, items, _ = await scan_group(fetcher, g, max_pages)
                head_ids = {f.album.id for f in head}
                extra = [
                    Found(a, g, back_catalogue=True, group_index=i)
                    for i, a in enumerate(items)
                    if unknown(a) and a.id not in head_ids
                ]
                head.extend(extra)
            if total_g < counts[g] + len(head):
                removal[0] = True
            new[g] = head
            if items:
                heads[g] = [a.id for a in items[:PAGE]]
                if len(items) >= total_g:
                    tails[g] = items[-1].id
        counts2[g] = total_g
        exact_done.add(g)

    # --- the anchor: the first group's last item still at o, nothing of that group after it
    g0 = groups[0] if groups else None
    anchor_ok = False
    if g0 is not None and g0 != "appears_on" and counts[g0] >= 1 and o == counts[g0] - 1 and tails.get(g0):
        first = listing.items.get(o)
        after = listing.items.get(o + 1)
        anchor_ok = first is not None and first.id == tails[g0]
        if anchor_ok and after is not None:
            if (unknown(after) and after.album_type == g0) or (not unknown(after) and known.get(after.id) == g0):
                anchor_ok = False

    def previous_nonempty(j: int) -> str | None:
        for h in reversed(groups[:j]):
            if counts2.get(h, 0) > 0:
                return h
        return None

    def layout_holds(j: int, pos: int) -> bool:
        """Every known item fetched so far sits in the group the layout puts there.

        The layout is the groups placed so far (``starts``/``counts2``) followed by the
        stored counts from ``pos`` on. The tail shortcut trusts the stored counts; a known
        item seen in another group's range (a removal shifted a boundary while an addition
        balanced the total) means they no longer hold, even though the total does.
        """
        ranges: list[tuple[int, int, str]] = [(starts[h], starts[h] + counts2[h], h) for h in groups[:j]]
        start = pos
        for h in groups[j:]:
            ranges.append((start, start + counts[h], h))
            start += counts[h]
        for p_, a in listing.items.items():
            if unknown(a):
                continue
            expected = next((h for lo, hi, h in ranges if lo <= p_ < hi), None)
            if known.get(a.id) != expected:
                return False
        return True

    async def walk(shortcuts: bool) -> tuple[bool, bool]:
        """Place every group's boundary; returns (a removal was seen, a shortcut was taken)."""
        counts2.clear()
        starts.clear()
        exact_done.clear()
        for g_ in groups:
            new[g_] = []
        removal[0] = False
        anchored = anchor_ok and shortcuts
        used = False
        pos = 0
        j = 0
        skipped_tail = False
        while j < len(groups):
            g = groups[j]
            starts[g] = pos
            if j == 0 and anchored:
                counts2[g] = counts[g]
                pos += counts[g]
                j += 1
                continue
            rest = sum(counts[h] for h in groups[j:])
            if (
                shortcuts
                and pos + rest == t2
                and not any(p >= pos and unknown(a) for p, a in listing.items.items())
                and layout_holds(j, pos)
            ):
                for h in groups[j:]:
                    starts[h] = pos
                    counts2[h] = counts[h]
                    pos += counts[h]
                skipped_tail = True
                used = True
                break
            if g == "appears_on":
                await exact(g)
                pos += counts2[g]
                j += 1
                continue
            # Head read at pos: unknown items until the first known one.
            unknowns: list[Any] = []
            k = None
            p = pos
            while p < t2 and len(unknowns) < max_pages * PAGE:
                album = await listing.at(p)
                if album is None:
                    break
                if not unknown(album):
                    k = album
                    break
                unknowns.append(album)
                p += 1
            if counts[g] == 0:
                lead = []
                for a in unknowns:
                    if a.album_type != g:
                        break
                    lead.append(a)
                new[g] = [Found(a, g, position=pos + i) for i, a in enumerate(lead)]
                counts2[g] = len(lead)
                pos += counts2[g]
                j += 1
                continue
            h = heads[g][0] if heads[g] else None
            # The item just before pos must belong to an earlier group (checked when seen, or
            # always when a removal may have moved the boundary).
            before = listing.items.get(pos - 1) if pos > 0 else None
            if before is None and pos > 0 and not shortcuts:
                before = await listing.at(pos - 1)
            boundary_ok = before is None or (
                known.get(before.id, g) != g if not unknown(before) else before.album_type != g
            )
            if (
                boundary_ok
                and k is not None
                and h is not None
                and k.id == h
                and all(a.album_type == g for a in unknowns)
            ):
                new[g] = [Found(a, g, position=pos + i) for i, a in enumerate(unknowns)]
                counts2[g] = counts[g] + len(unknowns)
                pos += counts2[g]
                j += 1
                continue
            # Alignment failed: find g's stored head near pos and move the boundary with the previous group.
            prev = previous_nonempty(j)
            q = listing.find(h, starts.get(prev, 0) if prev else 0) if h is not None else None
            handled = False
            if q is not None and prev is not None and not (prev == g0 and anchored) and prev not in exact_done:
                lead = 0
                while (q - lead - 1) in listing.items and q - lead - 1 >= starts[prev]:
                    a = listing.items[q - lead - 1]
                    if unknown(a) and a.album_type == g:
                        lead += 1
                    else:
                        break
                start_g = q - lead
                delta = start_g - pos
                new_prev = counts2[prev] + delta
                if delta < 0 and new_prev >= len(new[prev]):
                    counts2[prev] = new_prev  # the previous group lost releases (removal)
                    removal[0] = True
                    handled = True
                elif delta > 0:
                    await exact(prev)  # the previous group grew mid-group (back catalogue)
                    handled = starts[prev] + counts2[prev] == start_g
                if handled:
                    pos = start_g
                    starts[g] = pos
                    new[g] = [Found(listing.items[pos + i], g, position=pos + i) for i in range(lead)]
                    counts2[g] = counts[g] + lead
                    pos += counts2[g]
                    j += 1
                    continue
            if prev is not None and prev not in exact_done:
                await exact(prev)
                pos = starts[prev] + counts2[prev]
                for h2 in groups[groups.index(prev) + 1 : j]:
                    starts[h2] = pos
                    pos += counts2.get(h2, 0)
            await exact(g)
            starts[g] = pos
            pos += counts2[g]
            j += 1

        if not skipped_tail and pos != t2:
            # The last non-empty group's end is checked only by the total.
            last = None
            for h in reversed(groups):
                if counts2.get(h, 0) > 0 and h not in exact_done:
                    last = h
                    break
            delta = t2 - pos
            if last is not None and delta < 0 and counts2[last] + delta >= len(new[last]) and last != "appears_on":
                counts2[last] += delta
            elif last is not None:
                await exact(last)
            if sum(counts2.values()) != t2:
                for h in groups:
                    if h not in exact_done:
                        await exact(h)
        return removal[0], used or anchored

    unknown_in_probe = sum(1 for a in probe.items if unknown(a))
    trust = t2 - total >= unknown_in_probe  # fewer than the visible additions: something was removed
    removed, shortcut = await walk(trust)
    if removed and shortcut:
        await walk(False)  # a removal can hide an addition behind a shortcut: no shortcuts

    # --- positions, state, lower bound
    pos = 0
    for g in groups:
        starts[g] = pos
        pos += counts2.get(g, 0)
    consistent = pos == t2
    positions: dict[int, str] = {p: a.id for p, a in listing.items.items()}
    needed: list[int] = []
    found: list[Found] = []
    seen: set[str] = set()
    for g in groups:
        head_count = 0
        for f in new[g]:
            if f.album.id in seen:
                continue
            seen.add(f.album.id)
            if f.position is None and consistent:
                f.position = listing.find(f.album.id)
                if f.position is None and f.group_index is not None:
                    f.position = starts[g] + f.group_index
            found.append(f)
            if not f.back_catalogue and g != "appears_on":
                head_count += 1
            elif f.position is not None:
                needed.append(f.position)
        if new[g] and g != "appears_on":
            # Reaching the newest known release of the group: head items + that one.
            needed.extend(range(starts[g], starts[g] + min(head_count + 1, max(counts2[g], head_count))))
            if head_count and not (heads[g] and new[g][0].album.id == heads[g][0]):
                heads[g] = [f.album.id for f in new[g][:head_count]] + heads[g]
                heads[g] = heads[g][:PAGE]
        elif new[g]:
            needed.append(starts[g])  # appears_on: at least one page of it
    if consistent and groups:
        last_pos = counts2[g0] - 1 if g0 and counts2.get(g0) else None
        if last_pos is not None and last_pos in positions:
            tails[g0] = positions[last_pos]
        elif g0 and counts2.get(g0) != counts.get(g0):
            tails[g0] = None
    o2 = probe_offset(groups, counts2, t2)
    window_ids: list[str] = []
    for p in range(o2, min(o2 + PAGE, t2)):
        if p not in positions:
            break
        window_ids.append(positions[p])
    if consistent and len(window_ids) < min(2, t2 - o2):
        page = await fetcher.combined(o2)
        window_ids = [a.id for a in page.items]
    new_state = {
        "v": STATE_VERSION,
        "groups": list(groups),
        "counts": {g: counts2.get(g, 0) for g in groups},
        "heads": heads,
        "tails": tails,
        "total": pos if consistent else sum(counts2.values()),
        "window": {"offset": o2, "ids": window_ids if consistent else []},
    }
    lower = 1 + pages_to_cover(needed, probe_range)
    return Detection(
        changed=True, state=new_state, new=found, lower_bound=lower, naive_pages=_naive(t2), fallbacks=fallbacks
    )
