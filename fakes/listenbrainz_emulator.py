"""A loopback emulator of the ListenBrainz API endpoints release-bot reads.

Follows ``../shared/musicdata/README.md`` section 1 ("ListenBrainz fresh releases", sitewide part
and "Rate limiting") and section 2 ("ListenBrainz user top artists"), and the listenbrainz-server
code they cite: ``webserver/views/explore_api.py``, ``db/fresh_releases.py``,
``db/model/fresh_releases.py``, ``webserver/views/stats_api.py``, ``views/api_tools.py`` and
brainzutils ``ratelimit.py``. An ``aiohttp.web`` server on loopback; the test injects release
groups, users and statistics, and sets the emulator's clock.

Implemented:

* ``GET /1/explore/fresh-releases/`` (the trailing slash is part of the route: without it the
  answer is Werkzeug's 308 redirect). ``days`` (default 14; not an integer → 400 ``"Invalid days
  argument: X"``; outside 1–90 → 400 ``"days must be between 1 and 90."``), ``sort``
  (``release_date`` | ``artist_credit_name`` | ``release_name``, ascending, the other two keys as
  tie-breaks in rotated order), ``past`` / ``future`` (``true``/``false``, any case, default true,
  else 400 ``"Invalid past argument: X"``), ``release_date`` (the pivot, ``strptime("%Y-%m-%d")``,
  default the clock's UTC date). Window ``[pivot - days if past else pivot, pivot + days if future
  else pivot]``, both ends included. No paging: ``{"payload": {"releases": [...], "total_count":
  N}}``. One item per release group, dated by the group's first-release date, which must be a full
  ``YYYY-MM-DD`` to appear. A null primary or secondary type key is omitted (``to_dict()``);
  ``artist_mbids`` and ``release_tags`` come sorted and distinct (``array_agg(distinct …)``).
* ``GET /1/stats/user/{user}/artists`` — ``range`` (default ``all_time``; else 400 ``"Invalid
  range: X"``), ``offset`` and ``count`` (default 25, silently capped at 1000; not a non-negative
  integer → 400 ``"'count' should be a non-negative integer"``). Unknown user (names match
  case-insensitively) → 404 ``"Cannot find user: X"``; statistics not computed → 204 without a
  body. Payload ``user_id`` (as asked), ``artists`` (``artist_mbid``, ``artist_name``,
  ``listen_count``), ``count`` (items returned), ``total_artist_count``, ``offset``, ``range``,
  ``from_ts``, ``to_ts``, ``last_updated``.
* Rate limit (brainzutils): per client IP, ``rate_limit=(limit, window)`` default 30 per 10 s, in a
  fixed window aligned to epoch multiples of ``window``; every request counts, refused ones
  included. Every response of these two endpoints carries ``X-RateLimit-Limit``,
  ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (epoch), ``X-RateLimit-Reset-In`` (seconds) and
  lists them in ``Access-Control-Expose-Headers``; over the limit → 429 ``{"code": 429, "error":
  "You have exceeded your rate limit. …"}``. Errors are ``{"code", "error"}``.
* User-Agent (MetaBrainz, 2026-08-24, README section 1): a request without a meaningful
  User-Agent (see :func:`fakes.musicbrainz_emulator.is_anonymous_user_agent`) is answered, and
  then its IP is blocked for ``block_seconds`` (default 300: "IP blocked for 5 minutes after every
  submission", lyarenei/jellyfin-plugin-listenbrainz#179). A blocked IP's requests get no HTTP
  answer: the emulator drops the connection (the real block is a firewall, seen as timeouts).

JSON bodies are written as Flask's ``jsonify`` writes them (sorted keys, compact, ASCII escapes,
trailing newline).

Not implemented: the per-user ``/1/user/{user}/fresh_releases`` and every other endpoint (404),
per-token limits for whitelisted tokens, the cover-art and popularity lookups (``caa_id``,
``caa_release_mbid`` and ``listen_count`` are injected as they should come out), PostgreSQL's text
collation (names sort by code point here), and which release and secondary type represent a
release group when it has several (the real query leaves that to the database; here the test
injects the one release and the first secondary type wins).

Example::

    async with ListenBrainzEmulator(clock=clock) as lb:
        lb.add_release_group(RG_MBID, release_mbid=RELEASE_MBID, release_name="First Album",
                             artist_credit_name="Some Artist", artist_mbids=[ARTIST_MBID],
                             first_release_date="2026-12-04", primary_type="Album")
        # GET {lb.base_url}/1/explore/fresh-releases/?days=30 (today: the clock's UTC date)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.clock import Clock, utcnow
from fakes.loopback import LoopbackServer
from fakes.musicbrainz_emulator import is_anonymous_user_agent

__all__ = ["STATS_RANGES", "ListenBrainzEmulator", "LoggedRequest"]

#: ``StatisticsRange`` (``data/model/common_stat.py``), README section 2.
STATS_RANGES = (
    "this_week",
    "this_month",
    "this_year",
    "week",
    "month",
    "quarter",
    "year",
    "half_yearly",
    "all_time",
)
_PRIMARY_TYPES = ("Album", "Single", "EP", "Other", "Broadcast")
_SECONDARY_TYPES = (
    "Compilation",
    "Soundtrack",
    "Spokenword",
    "Interview",
    "Audiobook",
    "Live",
    "Remix",
    "DJ-mix",
    "Mixtape/Street",
    "Demo",
    "Audio drama",
    "Field recording",
)
_SORT_KEYS = ("release_date", "artist_credit_name", "release_name")
_DEFAULT_DAYS = 14
_MAX_DAYS = 90
_DEFAULT_COUNT = 25
_MAX_COUNT = 1000
_RATE_LIMIT_MESSAGE = (
    "You have exceeded your rate limit. See the X-RateLimit-* response headers for more information "
    "on your current rate limit."
)
_EXPOSED_HEADERS = "X-RateLimit-Remaining,X-RateLimit-Limit,X-RateLimit-Reset,X-RateLimit-Reset-In"
_NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please check your "
    "spelling and try again."
)
_FRESH_RELEASES = "/1/explore/fresh-releases/"
_STATS_RE = re.compile(r"^/1/stats/user/([^/]+)/artists$")
_MBID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PARTIAL_DATE_RE = re.compile(r"^[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?$")


@dataclass(frozen=True)
class LoggedRequest:
    """One request the emulator received.

    ``status`` is the HTTP status answered, or 0 when the connection was dropped (blocked IP);
    ``user_agent`` is the header as sent (``None`` when absent); ``at`` the clock's time (aware UTC).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    user_agent: str | None
    status: int
    at: dt.datetime


@dataclass
class _ReleaseGroup:
    """A release group with the one release ListenBrainz shows for it."""

    release_group_mbid: str
    release_mbid: str
    release_name: str
    artist_credit_name: str
    artist_mbids: list[str]
    first_release_date: str
    primary_type: str | None
    secondary_types: list[str]
    caa_id: int | None
    caa_release_mbid: str | None
    listen_count: int
    release_tags: list[str]

    @property
    def release_date(self) -> dt.date | None:
        """``make_date(y, m, d)``: only a full year-month-day first-release date gives a date."""
        try:
            return dt.date.fromisoformat(self.first_release_date)
        except ValueError:
            return None


@dataclass
class _ArtistStats:
    artists: list[dict[str, Any]]
    total_artist_count: int
    from_ts: int
    to_ts: int
    last_updated: int


class _ApiError(Exception):
    """Raised in a view: answer ``{"code": status, "error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _Window:
    """The brainzutils ``RateLimit`` of one request: counted in the window ending at ``reset``."""

    limit: int
    current: int
    reset: int
    reset_in: int

    @property
    def over_limit(self) -> bool:
        return self.current > self.limit

    def headers(self) -> dict[str, str]:
        return {
            "Access-Control-Expose-Headers": _EXPOSED_HEADERS,
            "X-RateLimit-Remaining": str(max(self.limit - self.current, 0)),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Reset": str(self.reset),
            "X-RateLimit-Reset-In": str(self.reset_in),
        }


def _jsonify(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A body as Flask's ``jsonify`` writes it: sorted keys, compact, ASCII-escaped, newline-terminated."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")) + "\n"
    response = web.Response(text=body, status=status, headers=headers)
    response.headers["Content-Type"] = "application/json"
    return response


def _parse_int_arg(q: Mapping[str, str], name: str, default: int) -> int:
    """``_parse_int_arg`` (api_tools.py): empty → default, else Python ``int()`` or 400."""
    value = q.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise _ApiError(400, f"Invalid {name} argument: {value}") from None


def _parse_bool_arg(q: Mapping[str, str], name: str, default: bool) -> bool:
    """``_parse_bool_arg`` (api_tools.py): ``true``/``false`` in any case, empty → default, else 400."""
    value = q.get(name)
    if not value:
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _ApiError(400, f"Invalid {name} argument: {value}")


def _non_negative_param(q: Mapping[str, str], name: str, default: int) -> int:
    """``get_non_negative_param`` (api_tools.py)."""
    value = q.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise _ApiError(400, f"'{name}' should be a non-negative integer") from None
    if number < 0:
        raise _ApiError(400, f"'{name}' should be a non-negative integer")
    return number


class ListenBrainzEmulator(LoopbackServer):
    """An in-process ListenBrainz API on loopback — see the module docstring.

    Parameters (keyword-only):

    * ``clock`` — aware UTC ``datetime`` source: "today" (the default pivot), the rate-limit
      window, IP blocks and :attr:`request_log`.
    * ``rate_limit`` — ``(requests, window_seconds)`` per client IP, default ``(30, 10)``.
    * ``block_seconds`` — how long an IP stays blocked after a request without a meaningful
      User-Agent.
    * ``latency`` — seconds slept (real time) before answering each request.

    ``base_url`` (``http://127.0.0.1:PORT``, the ``api.listenbrainz.org`` root) after :meth:`start`.
    """

    def __init__(
        self,
        *,
        clock: Clock = utcnow,
        rate_limit: tuple[int, int] = (30, 10),
        block_seconds: float = 300.0,
        latency: float = 0.0,
    ) -> None:
        self.clock = clock
        self.rate_limit = rate_limit
        self.block_seconds = block_seconds
        self.latency = latency
        #: Every request received, oldest first.
        self.request_log: list[LoggedRequest] = []
        self._release_groups: dict[str, _ReleaseGroup] = {}
        self._users: dict[str, str] = {}  # lowercased name -> name
        self._stats: dict[tuple[str, str], _ArtistStats] = {}  # (lowercased user, range) -> stats
        self._counts: dict[tuple[str, int], int] = {}  # (ip, window reset epoch) -> requests
        self._blocked_until: dict[str, dt.datetime] = {}
        self._runner: web.AppRunner | None = None
        self._base: str | None = None

    # ---------------------------------------------------------------- catalogue

    @staticmethod
    def _make_release_group(
        release_group_mbid: str,
        *,
        release_mbid: str,
        release_name: str,
        artist_credit_name: str,
        artist_mbids: Iterable[str],
        first_release_date: str,
        primary_type: str | None,
        secondary_types: Iterable[str],
        caa_id: int | None,
        caa_release_mbid: str | None,
        listen_count: int,
        release_tags: Iterable[str],
    ) -> _ReleaseGroup:
        for mbid in (release_group_mbid, release_mbid, *artist_mbids):
            if not _MBID_RE.match(mbid):
                raise ValueError(f"not a lowercase MBID: {mbid!r}")
        if caa_release_mbid is not None and not _MBID_RE.match(caa_release_mbid):
            raise ValueError(f"not a lowercase MBID: {caa_release_mbid!r}")
        if primary_type is not None and primary_type not in _PRIMARY_TYPES:
            raise ValueError(f"primary_type must be one of {_PRIMARY_TYPES} or None, not {primary_type!r}")
        secondaries = list(secondary_types)
        for secondary in secondaries:
            if secondary not in _SECONDARY_TYPES:
                raise ValueError(f"secondary type must be one of {_SECONDARY_TYPES}, not {secondary!r}")
        if first_release_date and not _PARTIAL_DATE_RE.match(first_release_date):
            raise ValueError(f"first_release_date must be '', YYYY, YYYY-MM or YYYY-MM-DD, not {first_release_date!r}")
        return _ReleaseGroup(
            release_group_mbid=release_group_mbid,
            release_mbid=release_mbid,
            release_name=release_name,
            artist_credit_name=artist_credit_name,
            artist_mbids=list(artist_mbids),
            first_release_date=first_release_date,
            primary_type=primary_type,
            secondary_types=secondaries,
            caa_id=caa_id,
            caa_release_mbid=caa_release_mbid,
            listen_count=listen_count,
            release_tags=list(release_tags),
        )

    def add_release_group(
        self,
        release_group_mbid: str,
        *,
        release_mbid: str,
        release_name: str,
        artist_credit_name: str,
        artist_mbids: Iterable[str],
        first_release_date: str,
        primary_type: str | None = None,
        secondary_types: Iterable[str] = (),
        caa_id: int | None = None,
        caa_release_mbid: str | None = None,
        listen_count: int = 0,
        release_tags: Iterable[str] = (),
    ) -> str:
        """Add (or replace) a release group and the release ListenBrainz shows for it; returns its MBID.

        ``first_release_date`` is the group's MusicBrainz first-release date: ``YYYY``, ``YYYY-MM``
        or ``YYYY-MM-DD`` (only the last can appear in fresh releases) or ``""``.
        ``primary_type``: Album, Single, EP, Other, Broadcast or ``None``; ``secondary_types``: e.g.
        ``["Live"]`` (only the first is shown). ``caa_id``, ``caa_release_mbid`` (cover art) and
        ``listen_count`` are shown as given. Raises ``ValueError`` for invalid values.
        """
        self._release_groups[release_group_mbid] = self._make_release_group(
            release_group_mbid,
            release_mbid=release_mbid,
            release_name=release_name,
            artist_credit_name=artist_credit_name,
            artist_mbids=artist_mbids,
            first_release_date=first_release_date,
            primary_type=primary_type,
            secondary_types=secondary_types,
            caa_id=caa_id,
            caa_release_mbid=caa_release_mbid,
            listen_count=listen_count,
            release_tags=release_tags,
        )
        return release_group_mbid

    def update_release_group(self, release_group_mbid: str, **changes: Any) -> None:
        """Change fields of a release group (the keyword names of :meth:`add_release_group`),
        e.g. ``first_release_date="2027-03-01"`` for a postponed release. Raises ``KeyError`` for
        an unknown group, ``TypeError`` for an unknown field."""
        current = self._release_groups[release_group_mbid]
        fields: dict[str, Any] = {
            "release_mbid": current.release_mbid,
            "release_name": current.release_name,
            "artist_credit_name": current.artist_credit_name,
            "artist_mbids": current.artist_mbids,
            "first_release_date": current.first_release_date,
            "primary_type": current.primary_type,
            "secondary_types": current.secondary_types,
            "caa_id": current.caa_id,
            "caa_release_mbid": current.caa_release_mbid,
            "listen_count": current.listen_count,
            "release_tags": current.release_tags,
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"cannot change {sorted(unknown)} of a release group")
        fields.update(changes)
        self._release_groups[release_group_mbid] = self._make_release_group(release_group_mbid, **fields)

    def remove_release_group(self, release_group_mbid: str) -> None:
        """Delete a release group: it leaves fresh releases."""
        del self._release_groups[release_group_mbid]

    # ------------------------------------------------------------ users, stats

    def add_user(self, name: str) -> str:
        """Register a ListenBrainz user (names are unique case-insensitively); returns ``name``."""
        self._users[name.lower()] = name
        return name

    def set_artist_stats(
        self,
        user: str,
        artists: Iterable[Mapping[str, Any]],
        *,
        stats_range: str = "all_time",
        from_ts: int,
        to_ts: int,
        last_updated: int,
        total_artist_count: int | None = None,
    ) -> None:
        """Store a user's computed top-artist statistics for ``stats_range``.

        ``artists`` — entries ``{"artist_mbid": str | None, "artist_name": str, "listen_count": int}``
        ranked already; ``total_artist_count`` defaults to their number (the server stores it
        apart). Timestamps are epoch seconds. Raises ``KeyError`` for an unknown user,
        ``ValueError`` for a bad range or entry.
        """
        if user.lower() not in self._users:
            raise KeyError(f"unknown user {user!r}; add_user() it first")
        if stats_range not in STATS_RANGES:
            raise ValueError(f"stats_range must be one of {STATS_RANGES}, not {stats_range!r}")
        entries = [dict(entry) for entry in artists]
        for entry in entries:
            if set(entry) != {"artist_mbid", "artist_name", "listen_count"}:
                raise ValueError(f"an entry has artist_mbid, artist_name and listen_count, not {sorted(entry)}")
        self._stats[(user.lower(), stats_range)] = _ArtistStats(
            artists=entries,
            total_artist_count=len(entries) if total_artist_count is None else total_artist_count,
            from_ts=from_ts,
            to_ts=to_ts,
            last_updated=last_updated,
        )

    def clear_artist_stats(self, user: str, *, stats_range: str = "all_time") -> None:
        """Forget a user's statistics for ``stats_range`` (the endpoint answers 204 again)."""
        self._stats.pop((user.lower(), stats_range), None)

    # -------------------------------------------------------- rate limit, blocks

    def reset_rate_limit(self) -> None:
        """Forget every request counted in the current windows."""
        self._counts.clear()

    def unblock(self) -> None:
        """Lift every User-Agent block."""
        self._blocked_until.clear()

    def is_blocked(self, ip: str = "127.0.0.1") -> bool:
        """Whether requests from ``ip`` are being dropped now."""
        until = self._blocked_until.get(ip)
        return until is not None and self.clock() < until

    def _count(self, ip: str, at: dt.datetime) -> _Window:
        """brainzutils ``RateLimit``: one more request in the epoch-aligned window of ``ip``."""
        limit, per = self.rate_limit
        now = int(at.timestamp())
        reset = (now // per) * per + per
        for key in [k for k in self._counts if k[1] < reset]:
            del self._counts[key]
        current = self._counts.get((ip, reset), 0) + 1
        self._counts[(ip, reset)] = current
        return _Window(limit=limit, current=current, reset=reset, reset_in=reset - now)

    # ------------------------------------------------------------ observation

    def requests_to(self, path_contains: str) -> list[LoggedRequest]:
        """Logged requests whose path contains ``path_contains``, oldest first."""
        return [r for r in self.request_log if path_contains in r.path]

    def clear_log(self) -> None:
        """Empty :attr:`request_log`."""
        self.request_log.clear()

    # -------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (after :meth:`start`); endpoints live under ``/1/``."""
        if self._base is None:
            raise RuntimeError("ListenBrainzEmulator is not started")
        return self._base

    # ---------------------------------------------------------------- handlers

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        at = self.clock()
        ip = request.remote or ""
        user_agent = request.headers.get("User-Agent")
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if self.is_blocked(ip):
            self.request_log.append(LoggedRequest(request.method, request.path, query, user_agent, 0, at))
            assert request.transport is not None
            request.transport.abort()  # a firewall block: no HTTP answer at all
            return web.Response(status=500)  # never reaches the client: the connection is gone
        response = self._respond(request, ip, at)
        if is_anonymous_user_agent(user_agent):
            self._blocked_until[ip] = at + dt.timedelta(seconds=self.block_seconds)
        self.request_log.append(LoggedRequest(request.method, request.path, query, user_agent, response.status, at))
        return response

    def _respond(self, request: web.Request, ip: str, at: dt.datetime) -> web.Response:
        path = request.path
        stats = _STATS_RE.match(path)
        if path == _FRESH_RELEASES[:-1]:
            # Werkzeug's strict slashes: the route ends in "/", so it redirects there, query kept.
            location = request.url.with_path(_FRESH_RELEASES, keep_query=True)
            return web.Response(status=308, headers={"Location": str(location)})
        if path != _FRESH_RELEASES and stats is None:
            return _jsonify({"code": 404, "error": _NOT_FOUND}, 404)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            return _jsonify({"code": 405, "error": "The method is not allowed for the requested URL."}, 405)
        window = self._count(ip, at)
        headers = {"Access-Control-Allow-Origin": "*", **window.headers()}
        if window.over_limit:
            return _jsonify({"code": 429, "error": _RATE_LIMIT_MESSAGE}, 429, headers)
        try:
            if stats is not None:
                payload = self._artist_stats(stats.group(1), request.query)
                if payload is None:
                    return web.Response(status=204, headers=headers)
            else:
                payload = self._fresh_releases(request.query, at)
        except _ApiError as exc:
            return _jsonify({"code": exc.status, "error": exc.message}, exc.status, headers)
        return _jsonify(payload, 200, headers)

    # ------------------------------------------------------------------ views

    def _fresh_releases(self, q: Mapping[str, str], at: dt.datetime) -> dict[str, Any]:
        """``get_fresh_releases`` (explore_api.py) over ``get_sitewide_fresh_releases`` (db)."""
        days = _parse_int_arg(q, "days", _DEFAULT_DAYS)
        if days < 1 or days > _MAX_DAYS:
            raise _ApiError(400, f"days must be between 1 and {_MAX_DAYS}.")
        sort = q.get("sort", "release_date")
        if sort not in _SORT_KEYS:
            raise _ApiError(400, "sort must be one of 'release_date', 'artist_credit_name' or 'release_name'.")
        past = _parse_bool_arg(q, "past", True)
        future = _parse_bool_arg(q, "future", True)
        pivot_param = q.get("release_date", "")
        if pivot_param != "":
            try:
                pivot = dt.datetime.strptime(pivot_param, "%Y-%m-%d").date()
            except ValueError:
                raise _ApiError(400, "Cannot parse date. Must be in YYYY-MM-DD format.") from None
        else:
            pivot = at.astimezone(dt.UTC).date()
        start = pivot - dt.timedelta(days=days) if past else pivot
        end = pivot + dt.timedelta(days=days) if future else pivot
        items = [
            self._fresh_release(group)
            for group in self._release_groups.values()
            if group.release_date is not None and start <= group.release_date <= end
        ]
        first = _SORT_KEYS.index(sort)
        order = _SORT_KEYS[first:] + _SORT_KEYS[:first]
        items.sort(key=lambda item: tuple(item[key] for key in order))
        return {"payload": {"releases": items, "total_count": len(items)}}

    @staticmethod
    def _fresh_release(group: _ReleaseGroup) -> dict[str, Any]:
        """``FreshRelease.to_dict()``: a null type key is deleted, not sent as null."""
        assert group.release_date is not None
        item: dict[str, Any] = {
            "artist_credit_name": group.artist_credit_name,
            "artist_mbids": sorted(set(group.artist_mbids)),
            "caa_id": group.caa_id,
            "caa_release_mbid": group.caa_release_mbid,
            "listen_count": group.listen_count,
            "release_date": group.release_date.strftime("%Y-%m-%d"),
            "release_group_mbid": group.release_group_mbid,
            "release_mbid": group.release_mbid,
            "release_name": group.release_name,
            "release_tags": sorted(set(group.release_tags)),
        }
        if group.primary_type is not None:
            item["release_group_primary_type"] = group.primary_type
        if group.secondary_types:
            item["release_group_secondary_type"] = group.secondary_types[0]
        return item

    def _artist_stats(self, user_name: str, q: Mapping[str, str]) -> dict[str, Any] | None:
        """``get_artist`` → ``_get_entity_stats`` (stats_api.py); ``None`` means 204."""
        if user_name.lower() not in self._users:
            raise _ApiError(404, f"Cannot find user: {user_name}")
        stats_range = q.get("range", "all_time")
        if stats_range not in STATS_RANGES:
            raise _ApiError(400, f"Invalid range: {stats_range}")
        offset = _non_negative_param(q, "offset", 0)
        count = min(_non_negative_param(q, "count", _DEFAULT_COUNT), _MAX_COUNT)
        stats = self._stats.get((user_name.lower(), stats_range))
        if stats is None:
            return None
        artists = [dict(entry) for entry in stats.artists[offset : offset + count]]
        return {
            "payload": {
                "user_id": user_name,
                "artists": artists,
                "count": len(artists),
                "total_artist_count": stats.total_artist_count,
                "offset": offset,
                "range": stats_range,
                "from_ts": stats.from_ts,
                "to_ts": stats.to_ts,
                "last_updated": stats.last_updated,
            }
        }
