"""A loopback emulator of the MusicBrainz web service ws/2 (JSON) for the parts release-bot uses.

Follows ``../shared/musicdata/README.md`` section 3 ("MusicBrainz ws/2 (JSON)", parts (a)–(d)) and
the musicbrainz-server code it cites (``Controller/WS/2/*.pm``, ``WebService/Validator.pm``,
``ControllerBase/WS/2.pm``, ``Data/ReleaseGroup.pm``, ``Data/Release.pm``,
``WebService/Serializer/JSON/2/*.pm``). An ``aiohttp.web`` server on loopback; the test injects
artists, URLs, release groups and releases, and may change or remove them at any time.

Implemented:

* ``GET /ws/2/url?resource=…[&inc=artist-rels+release-rels]`` — README 3(a). One ``resource`` answers
  one URL object ``{"id", "resource"[, "relations"]}`` or 404 ``{"error": "Not Found", "help": …}``.
  A repeated ``resource`` (MBS-13943) answers ``{"url-count", "url-offset": 0, "urls"}``: at most
  100 values are read (the rest are silently dropped), unknown URLs are absent, the list is ordered
  by URL string (``Data/URL.pm`` ``find_by_urls``; musicbrainz-server's own ``LookupURL.pm`` test
  expects another order, so clients should match results by ``resource``). Input goes through :func:`canonical_url` (Perl ``URI->canonical``) and nothing
  else: a Spotify link with ``?si=…`` or an ``intl-xx`` segment does *not* match, because MusicBrainz
  stores Spotify links cleaned (``https://open.spotify.com/artist/{id}``) — see :func:`stored_url`.
  ``GET /ws/2/url/{mbid}`` too. Artist relations seen from the URL have ``direction: "backward"``
  and the artist under ``artist`` (``id``, ``name``, ``sort-name``, ``disambiguation``, ``type``,
  ``type-id``, ``country``); the artist↔Spotify link type is "free streaming"
  (:data:`FREE_STREAMING_ARTIST`). Releases seen from a URL carry no ``asin``/``cover-art-archive``
  and null ``status``/``packaging`` (the server does not load them there — as in the recorded and
  the server-test files).
* ``GET /ws/2/release-group?artist=MBID|release=MBID[&type=…][&release-group-status=…]&limit&offset``
  — README 3(b): ``limit`` default 25, capped at 100 (``limit=0`` means the default), ``limit`` or
  ``offset`` not a natural number → 400; ``type`` values joined by ``|``, lowercase names (also the
  ``sa-``/``va-`` forms); primary types OR-ed, every given secondary type required; unknown → 400
  ``"X is not a recognized release-group type."``; ``status`` → 400. ``release-group-status=
  website-default`` leaves out "unofficial" groups (no Official release but some release with a
  status); any other value lists all. Order (``_find_by_artist_fast``): unofficial last, primary type
  child order (Album, Single, EP, Broadcast, Other; none first), secondary types, first-release date
  with unknown parts last, first character of the title, then insertion order.
  ``GET /ws/2/release-group/{mbid}`` too. ``inc=artist-credits`` is emulated.
* ``GET /ws/2/release?release-group=MBID|artist=MBID[&status=…][&inc=url-rels]`` and
  ``GET /ws/2/release/{mbid}`` — README 3(c): ``{"release-count", "release-offset", "releases"}``;
  ``barcode`` null (unknown) vs ``""`` (none); ``date``/``country``/``release-events`` only when the
  release has events (``Serializer/JSON/2/Release.pm``); order by earliest date (unknown last),
  country name, barcode (by artist also title), then insertion order.
* ``GET /ws/2/artist/{mbid}[?inc=url-rels]`` — an artist lookup, as the musicbrainz-server artist
  serializer (``Serializer/JSON/2/Artist.pm``) writes the fields the emulator holds (``id``,
  ``name``, ``sort-name``, ``disambiguation``, ``type``, ``type-id``, ``country``). ``inc=url-rels``
  adds ``relations``: each URL linked to the artist, seen from the artist (``direction:
  "forward"``, ``target-type: "url"``, ``url: {"id", "resource"}``, ``ended`` kept), in the shape of
  the recorded release lookup with ``inc=url-rels`` (README 3(c)); other ``*-rels`` give
  ``relations: []`` (the emulator holds no other relationships of an artist). Unknown artist → 404,
  bad MBID → 400 ``"Invalid mbid."``. Artist browses and searches are not emulated (501).
* Validation as ``WebService/Validator.pm``: unknown ``inc`` → 400 ``"X is not a valid inc
  parameter for the R resource."``; several ``inc`` parameters → 400; bad MBID → 400
  ``"Invalid mbid."``; unknown entity → 404. Errors are ``{"error", "help"}`` JSON, compact like the
  real server's (the recorded ``Content-Length`` values match).
* Rate limit — README 3(d): about one request per second per client IP, as a token bucket
  (``rate_limit=(requests_per_second, burst)``, default ``(1.0, 1)``: requests must be ≥ 1 s
  apart); above it 503 with the gateway's JSON body. Refused requests take no token.
* User-Agent — README 3(d): a missing, empty or generic-library User-Agent (``python-requests/…``,
  ``aiohttp``, ``node-fetch``, ``curl/…``, ``Go-http-client``, …) is "anonymous" and denied with
  the same 503.
* ``fail_next(n)`` answers the next ``n`` requests 503 as well (the service's global limit).

Not implemented (answers 501 with an ``{"error", "help"}`` body naming the emulator, so a client
never mistakes it for real data): search (``query=``), other entity types, ``inc`` values that are
valid on the real server but not emulated (tags, ratings, genres, labels, recordings, media,
release-groups, aliases, annotation, collections, user data). XML (no ``fmt=json`` and no JSON
``Accept``) answers 406. The ``x-ratelimit-*`` headers of the real responses are not sent (their
meaning is undocumented, README 3(d)); an IP ban after sustained abuse is not modelled; artist
lookups carry only the fields above (no ``life-span``, ``area``, ``gender``, ``isnis``, ``ipis``),
and a merged artist's old MBID is not redirected; "Field recording" cannot be injected (its
type-id is not in the sources); ``musicbrainz_collate`` ordering is approximated by Python's
case-folded comparison.

Example::

    async with MusicBrainzEmulator(clock=clock) as mb:
        artist = mb.add_artist(ARTIST_MBID, "Some Artist", spotify_id=SPOTIFY_ARTIST_ID)
        group = mb.add_release_group(RG_MBID, "First Album", artist_mbids=[artist], first_release_date="2026-12-04")
        mb.add_release(RELEASE_MBID, group, "First Album", barcode="0123456789012")
        # GET {mb.base_url}/url?resource=https://open.spotify.com/artist/{SPOTIFY_ARTIST_ID}&inc=artist-rels&fmt=json
        mb.update_release_group(group, first_release_date="2027-01-15")  # later responses show the new date
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from aiohttp import web
from multidict import MultiMapping

from bot.clock import Clock, utcnow
from fakes.loopback import LoopbackServer

__all__ = [
    "FREE_STREAMING_ARTIST",
    "FREE_STREAMING_RELEASE",
    "LoggedRequest",
    "MusicBrainzEmulator",
    "canonical_url",
    "is_anonymous_user_agent",
    "stored_url",
]

#: Link type "free streaming" between an artist and a URL (README 3(a)).
FREE_STREAMING_ARTIST = "769085a1-c2f7-4c24-a532-2375a77693bd"
#: Link type "free streaming" between a release and a URL (README 3(a)).
FREE_STREAMING_RELEASE = "08445ccf-7b99-4438-9f9a-fb9ac18099ee"

_HELP = "For usage, please see: https://musicbrainz.org/development/mmd"
#: The gateway's 503 body (README 3(d); ``musicbrainz/error_503_ratelimit.ASSEMBLED.json``).
_RATE_LIMIT_BODY = {
    "error": "Your requests are exceeding the allowable rate limit. Please see "
    "http://wiki.musicbrainz.org/XMLWebService for more information."
}
_JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_MAX_RESOURCES = 100  # $MAX_RESOURCE_PARAMS, Controller/WS/2/URL.pm
_DEFAULT_LIMIT = 25
_MAX_LIMIT = 100

#: Primary types: name → (child_order, type-id). Child orders from the server's default rows.
_PRIMARY_TYPES: dict[str, tuple[int, str]] = {
    "Album": (1, "f529b476-6e62-324f-b0aa-1f3e33d313fc"),
    "Single": (2, "d6038452-8ee0-3f68-affc-2de9a1ede0b9"),
    "EP": (3, "6d0c5bf6-7a33-3420-a519-44fc63eedebf"),
    "Broadcast": (4, "3b2e49e1-2875-37b8-9fa9-1f7cf3f49900"),
    "Other": (99, "4fc3be2b-de1e-396b-a933-beb8f1607a22"),
}
#: Secondary types that can be injected: name → type-id, in the server's id order.
_SECONDARY_TYPES: dict[str, str] = {
    "Compilation": "dd2a21e1-0c00-3729-a7a0-de60b84eb5d1",
    "Soundtrack": "22a628ad-c082-3c4f-b1b6-d41665107b88",
    "Spokenword": "66b8a13e-43ff-3ac0-ac6c-73659d3817c6",
    "Interview": "12af3f5e-ce2a-3941-8b93-d482884031e5",
    "Audiobook": "499a387e-6195-333e-91c0-9592bfec535e",
    "Live": "6fd474e2-6b58-3102-9d17-d6f7eb7da0a0",
    "Remix": "0c60f497-ff81-3818-befd-abfc84a4858b",
    "DJ-mix": "0d47f47a-3fe5-3d69-ac9d-d566c23968bf",
    "Mixtape/Street": "15c1b1f5-d893-3375-a1db-e180c5ae15ed",
    "Demo": "81598169-0d6c-3bce-b4be-866fa658eda3",
    "Audio drama": "0eb547c2-8783-43e4-8f81-751c680e7b04",
}
#: Values the ``type`` parameter accepts (README 3(b) and the API docs), lowercase as the server keys them.
_TYPE_PARAM_VALUES = {name.lower() for name in (*_PRIMARY_TYPES, *_SECONDARY_TYPES, "Field recording")}
_PRIMARY_PARAM_VALUES = {name.lower() for name in _PRIMARY_TYPES}
_RELEASE_STATUSES: dict[str, str] = {
    "Official": "4e304316-386d-3409-af2e-78857eec5cfe",
    "Promotion": "518ffc83-5cde-34df-8627-81bff5093d92",
    "Bootleg": "1156806e-d06a-38bd-83f0-cf2284a808b9",
    "Pseudo-Release": "41121bb9-3413-3818-8a9a-9742318349aa",
    "Withdrawn": "6a3772de-4605-4132-993d-aa315cd19b4b",
    "Cancelled": "55005350-bc3f-441a-b0c7-27c565eae341",
}
_STATUS_PARAM_VALUES = {name.lower() for name in _RELEASE_STATUSES}

#: ``inc`` values that select relationships (``%relation_types`` version 2, Validator.pm).
_REL_INCS = frozenset(
    [
        "area-rels",
        "artist-rels",
        "release-rels",
        "release-group-rels",
        "recording-rels",
        "label-rels",
        "work-rels",
        "url-rels",
    ]
)
#: ``%extra_inc`` (Validator.pm): allowed only together with the key.
_EXTRA_INC = {
    "recordings": ("artist-credits", "puids", "isrcs"),
    "releases": ("artist-credits", "discids", "media", "type", "status"),
    "release-groups": ("artist-credits", "type"),
    "works": ("artist-credits",),
}
#: The ``inc`` values each query type accepts (the ``$ws_defs`` of the controllers), besides relations.
_ALLOWED_INCS: dict[tuple[str, str], frozenset[str]] = {
    ("url", "lookup"): frozenset(),
    ("artist", "lookup"): frozenset(
        [
            "recordings",
            "releases",
            "release-groups",
            "works",
            "aliases",
            "various-artists",
            "annotation",
            "tags",
            "user-tags",
            "genres",
            "user-genres",
            "ratings",
            "user-ratings",
            "collections",
            "user-collections",
        ]
    ),
    ("url", "browse"): frozenset(),
    ("release-group", "browse"): frozenset(
        ["artist-credits", "annotation", "tags", "user-tags", "ratings", "user-ratings"]
    ),
    ("release-group", "lookup"): frozenset(
        [
            "artists",
            "releases",
            "artist-credits",
            "aliases",
            "annotation",
            "tags",
            "user-tags",
            "ratings",
            "user-ratings",
        ]
    ),
    ("release", "browse"): frozenset(
        ["artist-credits", "labels", "recordings", "discids", "release-groups", "media", "annotation"]
    ),
    ("release", "lookup"): frozenset(
        [
            "artists",
            "labels",
            "recordings",
            "release-groups",
            "aliases",
            "tags",
            "user-tags",
            "ratings",
            "user-ratings",
            "collections",
            "artist-credits",
            "discids",
            "media",
            "recording-level-rels",
            "work-level-rels",
            "annotation",
        ]
    ),
}
_EMULATED_INCS = frozenset({"artist-credits"})
#: Entity resources of ws/2 the emulator does not serve (answered 501, not 404).
_OTHER_RESOURCES = frozenset(
    [
        "area",
        "collection",
        "discid",
        "event",
        "genre",
        "instrument",
        "isrc",
        "iswc",
        "label",
        "place",
        "rating",
        "recording",
        "series",
        "tag",
        "work",
    ]
)

_MBID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_NAT_RE = re.compile(r"^[0-9]+$")
_PARTIAL_DATE_RE = re.compile(r"^(?:[0-9]{4}|\?{4})(?:-(?:[0-9]{2}|\?\?)(?:-[0-9]{2})?)?$")
_URI_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(?://([^/?#]*))?([^?#]*)(\?[^#]*)?(#.*)?$")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_SPOTIFY_RE = re.compile(
    r"^https?://(?:open|play|embed)\.spotify\.com/(?:embed/)?(?:intl-[a-z-]+/)?(?:user/[^/?#]+/)?"
    r"(artist|album|track|playlist|episode|show)/([0-9A-Za-z]+)(?:[/?#].*)?$"
)
#: Generic HTTP-library User-Agents MusicBrainz treats as anonymous (README 3(d)), matched at the start.
_LIBRARY_USER_AGENTS = re.compile(
    r"^(?:python-requests|python-urllib|python/[0-9.]+ aiohttp|aiohttp|python-httpx|httpx|node-fetch|undici|"
    r"axios|got|curl|wget|go-http-client|okhttp|java(?:-http-client)?|apache-httpclient|libwww-perl|ruby|php|"
    r"guzzlehttp|dart|reqwest)(?=[/ ;(]|$)",
    re.IGNORECASE,
)


def is_anonymous_user_agent(user_agent: str | None) -> bool:
    """Whether MusicBrainz counts ``user_agent`` as anonymous: missing, blank or a library default.

    README 3(d): clients must send ``AppName/version ( contact-url-or-email )``; generic library
    User-Agents (``python-requests/2.31``, ``Python/3.11 aiohttp/3.9``, ``node-fetch``, ``curl/8``…)
    are throttled or blocked. Whether the contact part is present is not checked (the server
    cannot tell a meaningful name from a made-up one either).
    """
    if user_agent is None or not user_agent.strip():
        return True
    return bool(_LIBRARY_USER_AGENTS.match(user_agent.strip()))


def canonical_url(url: str) -> str:
    """``url`` as Perl's ``URI->canonical`` leaves it — what ``/ws/2/url?resource=`` looks up.

    Lowercases the scheme and (for URLs with an authority) the host, drops an empty or default port
    (80 for http, 443 for https), turns an empty http(s) path into ``/``, unescapes ``%XX`` of
    unreserved characters and uppercases the other escapes. Nothing else: no query or path
    cleanup (README 3(a)). A string that is not a URI comes back unchanged.
    """
    match = _URI_RE.match(url)
    if match is None:
        return url
    scheme, authority, path, query, fragment = match.groups()
    scheme = scheme.lower()
    if authority is not None:
        userinfo, at, hostport = authority.rpartition("@")
        host, colon, port = hostport.partition(":")
        if colon and (port == "" or port == _DEFAULT_PORTS.get(scheme)):
            colon, port = "", ""
        authority = f"{userinfo}{at}{host.lower()}{colon}{port}"
        if scheme in _DEFAULT_PORTS and path == "" and query is None:
            path = "/"
    rebuilt = f"{scheme}:{'' if authority is None else '//' + authority}{path}{query or ''}{fragment or ''}"

    def escape(m: re.Match[str]) -> str:
        char = chr(int(m.group(1), 16))
        return char if char in _UNRESERVED else "%" + m.group(1).upper()

    return _ESCAPE_RE.sub(escape, rebuilt)


def stored_url(url: str) -> str:
    """The form in which MusicBrainz stores ``url``: canonical, and Spotify links cleaned.

    Spotify links become ``https://open.spotify.com/{kind}/{id}`` without query, fragment,
    ``intl-xx`` segment or ``user/…`` prefix (``URLCleanup.js``, README 3(a)). Used when the test
    injects a URL, never on lookup input.
    """
    url = canonical_url(url)
    spotify = _SPOTIFY_RE.match(url)
    if spotify is not None:
        return f"https://open.spotify.com/{spotify.group(1)}/{spotify.group(2)}"
    return url


@dataclass(frozen=True)
class LoggedRequest:
    """One request the emulator answered.

    ``query`` holds every value of every parameter, in order (``resource`` repeats); ``user_agent``
    is the header as sent (``None`` when absent); ``at`` is the emulator clock's time (aware UTC).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    user_agent: str | None
    status: int
    at: dt.datetime


@dataclass
class _Artist:
    mbid: str
    name: str
    sort_name: str
    disambiguation: str
    artist_type: str | None
    artist_type_id: str | None
    country: str | None


@dataclass
class _Link:
    """A relationship between a URL and an artist or a release."""

    resource: str  # stored form
    target_type: str  # "artist" | "release"
    target: str  # MBID
    link_type: str
    link_type_id: str
    begin: str | None
    end: str | None
    ended: bool


@dataclass
class _ReleaseGroup:
    mbid: str
    title: str
    artist_mbids: list[str]
    primary_type: str | None
    secondary_types: list[str]
    first_release_date: str
    disambiguation: str
    seq: int


@dataclass
class _Release:
    mbid: str
    release_group: str
    title: str
    artist_mbids: list[str]
    status: str | None
    barcode: str | None
    asin: str | None
    packaging: str | None
    packaging_id: str | None
    quality: str
    language: str | None
    script: str | None
    disambiguation: str
    release_events: list[dict[str, Any]]
    cover_art: dict[str, Any]
    seq: int = field(default=0)


class _WsError(Exception):
    """Raised in a handler: answer ``{"error": message, "help": …}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _not_emulated(what: str) -> _WsError:
    return _WsError(501, f"{what} is not emulated by MusicBrainzEmulator")


def _json_response(payload: Any, status: int = 200) -> web.Response:
    """Compact UTF-8 JSON, as the real server sends it, with its CORS header."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    response = web.Response(body=body, status=status)
    response.headers["Content-Type"] = _JSON_CONTENT_TYPE
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _error_response(status: int, message: str) -> web.Response:
    """``{"help", "error"}`` — ``WebService/JSONSerializer.pm`` ``output_error``."""
    return _json_response({"help": _HELP, "error": message}, status)


def _date_sort_key(date: str | None) -> tuple[tuple[int, int], ...]:
    """Year, month, day ascending, each unknown part after the known ones (SQL ``NULLS LAST``)."""
    parts = (date or "").split("-") if date else []
    key = []
    for index in range(3):
        value = parts[index] if index < len(parts) else ""
        key.append((0, int(value)) if value.isdigit() else (1, 0))
    return tuple(key)


class MusicBrainzEmulator(LoopbackServer):
    """An in-process MusicBrainz ws/2 (JSON) on loopback — see the module docstring.

    Parameters (keyword-only):

    * ``clock`` — aware UTC ``datetime`` source for the rate limit and :attr:`request_log`.
    * ``rate_limit`` — ``(requests_per_second, burst)`` per client IP; ``None`` disables it.
    * ``latency`` — seconds slept (real time) before answering each request.

    ``base_url`` (``http://127.0.0.1:PORT/ws/2``) is available after :meth:`start`.
    """

    # 100 ``resource`` values make a long request line; the real gateway's limit is not documented.
    handler_args: ClassVar[dict[str, Any]] = {"max_line_size": 65536}

    def __init__(
        self,
        *,
        clock: Clock = utcnow,
        rate_limit: tuple[float, int] | None = (1.0, 1),
        latency: float = 0.0,
    ) -> None:
        self.clock = clock
        self.rate_limit = rate_limit
        self.latency = latency
        #: Every request answered, oldest first.
        self.request_log: list[LoggedRequest] = []
        self._artists: dict[str, _Artist] = {}
        self._urls: dict[str, str] = {}  # stored resource -> url id
        self._links: list[_Link] = []
        self._release_groups: dict[str, _ReleaseGroup] = {}
        self._releases: dict[str, _Release] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # ip -> (tokens, at epoch seconds)
        self._failures = 0
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self._base: str | None = None

    # ------------------------------------------------------------------ catalogue

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @staticmethod
    def _check_mbid(value: str) -> None:
        if not _MBID_RE.match(value):
            raise ValueError(f"not a lowercase MBID: {value!r}")

    def add_artist(
        self,
        mbid: str,
        name: str,
        *,
        sort_name: str | None = None,
        disambiguation: str = "",
        artist_type: str | None = None,
        artist_type_id: str | None = None,
        country: str | None = None,
        spotify_id: str | None = None,
    ) -> str:
        """Add (or replace) an artist; returns ``mbid``.

        ``sort_name`` defaults to ``name``; ``artist_type``/``artist_type_id`` are the MusicBrainz
        artist type (e.g. ``"Person"`` and its id) or ``None``; ``country`` an ISO code or ``None``.
        ``spotify_id`` links ``https://open.spotify.com/artist/{spotify_id}`` as "free streaming".
        """
        self._check_mbid(mbid)
        self._artists[mbid] = _Artist(
            mbid=mbid,
            name=name,
            sort_name=name if sort_name is None else sort_name,
            disambiguation=disambiguation,
            artist_type=artist_type,
            artist_type_id=artist_type_id,
            country=country,
        )
        if spotify_id is not None:
            self.link_url(f"https://open.spotify.com/artist/{spotify_id}", artist=mbid)
        return mbid

    def add_url(self, resource: str, *, url_id: str | None = None) -> str:
        """Register a URL (stored as :func:`stored_url` gives it); returns its id.

        The id is ``url_id`` or a UUID derived from the stored URL; registering a URL again keeps
        its first id unless ``url_id`` is given.
        """
        stored = stored_url(resource)
        if url_id is not None:
            self._check_mbid(url_id)
            self._urls[stored] = url_id
        elif stored not in self._urls:
            self._urls[stored] = str(uuid.uuid5(uuid.NAMESPACE_URL, stored))
        return self._urls[stored]

    def link_url(
        self,
        resource: str,
        *,
        artist: str | None = None,
        release: str | None = None,
        link_type: str = "free streaming",
        link_type_id: str | None = None,
        ended: bool = False,
        begin: str | None = None,
        end: str | None = None,
        url_id: str | None = None,
    ) -> str:
        """Relate a URL to one artist or one release; returns the URL's id.

        ``link_type_id`` defaults to the documented "free streaming" id for the target
        (:data:`FREE_STREAMING_ARTIST` / :data:`FREE_STREAMING_RELEASE`); other link types need it.
        Raises ``KeyError`` for an unknown artist or release.
        """
        if (artist is None) == (release is None):
            raise ValueError("link_url needs exactly one of artist= or release=")
        target_type, target = ("artist", artist) if artist is not None else ("release", release)
        assert target is not None
        if target_type == "artist" and target not in self._artists:
            raise KeyError(f"unknown artist {target!r}; add_artist() it first")
        if target_type == "release" and target not in self._releases:
            raise KeyError(f"unknown release {target!r}; add_release() it first")
        if link_type_id is None:
            if link_type != "free streaming":
                raise ValueError(f"pass link_type_id for link type {link_type!r}")
            link_type_id = FREE_STREAMING_ARTIST if target_type == "artist" else FREE_STREAMING_RELEASE
        url = self.add_url(resource, url_id=url_id)
        stored = stored_url(resource)
        self._links = [link for link in self._links if not (link.resource == stored and link.target == target)]
        self._links.append(_Link(stored, target_type, target, link_type, link_type_id, begin, end, ended))
        return url

    def unlink_url(self, resource: str, *, artist: str | None = None, release: str | None = None) -> None:
        """Remove the relationships between a URL and ``artist`` / ``release`` (the URL stays known)."""
        stored = stored_url(resource)
        targets = {t for t in (artist, release) if t is not None}
        self._links = [link for link in self._links if not (link.resource == stored and link.target in targets)]

    def _make_release_group(
        self,
        mbid: str,
        title: str,
        *,
        artist_mbids: Iterable[str],
        primary_type: str | None,
        secondary_types: Iterable[str],
        first_release_date: str,
        disambiguation: str,
        seq: int,
    ) -> _ReleaseGroup:
        self._check_mbid(mbid)
        artists = list(artist_mbids)
        if not artists:
            raise ValueError("a release group needs at least one artist")
        for artist in artists:
            if artist not in self._artists:
                raise KeyError(f"unknown artist {artist!r}; add_artist() it first")
        if primary_type is not None and primary_type not in _PRIMARY_TYPES:
            raise ValueError(f"primary_type must be one of {sorted(_PRIMARY_TYPES)} or None, not {primary_type!r}")
        secondaries = list(secondary_types)
        for secondary in secondaries:
            if secondary not in _SECONDARY_TYPES:
                raise ValueError(f"secondary type must be one of {list(_SECONDARY_TYPES)}, not {secondary!r}")
        if first_release_date and not _PARTIAL_DATE_RE.match(first_release_date):
            raise ValueError(f"first_release_date must be '', YYYY, YYYY-MM or YYYY-MM-DD, not {first_release_date!r}")
        return _ReleaseGroup(
            mbid=mbid,
            title=title,
            artist_mbids=artists,
            primary_type=primary_type,
            secondary_types=sorted(secondaries, key=list(_SECONDARY_TYPES).index),
            first_release_date=first_release_date,
            disambiguation=disambiguation,
            seq=seq,
        )

    def add_release_group(
        self,
        mbid: str,
        title: str,
        *,
        artist_mbids: Iterable[str],
        primary_type: str | None = "Album",
        secondary_types: Iterable[str] = (),
        first_release_date: str = "",
        disambiguation: str = "",
    ) -> str:
        """Add (or replace) a release group; returns ``mbid``.

        ``artist_mbids`` — its artist credit (artists added before), credited under their names,
        joined ", " and " & " before the last. ``primary_type`` — Album, Single, EP, Broadcast,
        Other or ``None``. ``secondary_types`` — e.g. ``["Compilation"]``. ``first_release_date`` —
        ``""`` (unknown), ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` (``????-MM-DD`` also accepted).
        Raises ``ValueError`` / ``KeyError`` for invalid values or unknown artists.
        """
        previous = self._release_groups.get(mbid)
        self._release_groups[mbid] = self._make_release_group(
            mbid,
            title,
            artist_mbids=artist_mbids,
            primary_type=primary_type,
            secondary_types=secondary_types,
            first_release_date=first_release_date,
            disambiguation=disambiguation,
            seq=previous.seq if previous else self._next_seq(),
        )
        return mbid

    def update_release_group(self, mbid: str, **changes: Any) -> None:
        """Change fields of a release group (``title``, ``artist_mbids``, ``primary_type``,
        ``secondary_types``, ``first_release_date``, ``disambiguation``), e.g. a postponed date.

        Validated as in :meth:`add_release_group`; raises ``KeyError`` for an unknown group.
        """
        current = self._release_groups[mbid]
        fields: dict[str, Any] = {
            "title": current.title,
            "artist_mbids": current.artist_mbids,
            "primary_type": current.primary_type,
            "secondary_types": current.secondary_types,
            "first_release_date": current.first_release_date,
            "disambiguation": current.disambiguation,
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"cannot change {sorted(unknown)} of a release group")
        fields.update(changes)
        title = fields.pop("title")
        self._release_groups[mbid] = self._make_release_group(mbid, title, seq=current.seq, **fields)

    def remove_release_group(self, mbid: str) -> None:
        """Delete a release group with its releases (and their URL relationships): 404 afterwards."""
        del self._release_groups[mbid]
        for release in [r for r in self._releases.values() if r.release_group == mbid]:
            self.remove_release(release.mbid)

    def add_release(
        self,
        mbid: str,
        release_group: str,
        title: str,
        *,
        artist_mbids: Iterable[str] | None = None,
        status: str | None = "Official",
        barcode: str | None = None,
        release_events: Iterable[Mapping[str, Any]] | None = None,
        date: str | None = None,
        asin: str | None = None,
        packaging: str | None = None,
        packaging_id: str | None = None,
        quality: str = "normal",
        language: str | None = "eng",
        script: str | None = "Latn",
        disambiguation: str = "",
        cover_art: Mapping[str, Any] | None = None,
    ) -> str:
        """Add (or replace) a release of ``release_group``; returns ``mbid``.

        * ``barcode`` — ``None`` (unknown), ``""`` (the release has none) or the digits (UPC/EAN).
        * ``status`` — Official, Promotion, Bootleg, Pseudo-Release, Withdrawn, Cancelled or ``None``.
        * ``release_events`` — MusicBrainz objects ``{"date": str, "area": {...} | None}`` in the
          order the server lists them; the first gives ``date`` and ``country`` (the area's
          ``iso-3166-1-codes[0]``). ``date`` alone is a shortcut for one event without an area.
        * ``cover_art`` — the ``cover-art-archive`` object; default: no artwork.
        * ``artist_mbids`` — the release's artist credit, default the release group's.
        """
        self._check_mbid(mbid)
        group = self._release_groups.get(release_group)
        if group is None:
            raise KeyError(f"unknown release group {release_group!r}; add_release_group() it first")
        if status is not None and status not in _RELEASE_STATUSES:
            raise ValueError(f"status must be one of {list(_RELEASE_STATUSES)} or None, not {status!r}")
        if barcode is not None and barcode and not barcode.isdigit():
            raise ValueError(f"barcode must be None, '' or digits, not {barcode!r}")
        artists = list(artist_mbids) if artist_mbids is not None else list(group.artist_mbids)
        for artist in artists:
            if artist not in self._artists:
                raise KeyError(f"unknown artist {artist!r}; add_artist() it first")
        if release_events is None:
            events = [] if date is None else [{"date": date, "area": None}]
        else:
            if date is not None:
                raise ValueError("pass either release_events or date")
            events = [dict(event) for event in release_events]
        for event in events:
            if set(event) != {"date", "area"}:
                raise ValueError(f"a release event has exactly 'date' and 'area', not {sorted(event)}")
        previous = self._releases.get(mbid)
        self._releases[mbid] = _Release(
            mbid=mbid,
            release_group=release_group,
            title=title,
            artist_mbids=artists,
            status=status,
            barcode=barcode,
            asin=asin,
            packaging=packaging,
            packaging_id=packaging_id,
            quality=quality,
            language=language,
            script=script,
            disambiguation=disambiguation,
            release_events=events,
            cover_art=dict(cover_art)
            if cover_art is not None
            else {"artwork": False, "count": 0, "darkened": False, "front": False, "back": False},
            seq=previous.seq if previous else self._next_seq(),
        )
        return mbid

    def update_release(self, mbid: str, **changes: Any) -> None:
        """Change fields of a release, e.g. ``barcode="0602…"`` once it is known.

        Accepts ``title``, ``status``, ``barcode``, ``asin``, ``packaging``, ``packaging_id``,
        ``quality``, ``language``, ``script``, ``disambiguation``, ``release_events``, ``cover_art``
        and ``artist_mbids``, validated as in :meth:`add_release`. Raises ``KeyError`` for an unknown
        release, ``TypeError`` for another field.
        """
        current = self._releases[mbid]
        allowed = {
            "title",
            "status",
            "barcode",
            "asin",
            "packaging",
            "packaging_id",
            "quality",
            "language",
            "script",
            "disambiguation",
            "release_events",
            "cover_art",
            "artist_mbids",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError(f"cannot change {sorted(unknown)} of a release")
        merged = replace(current, **changes)
        self.add_release(
            mbid,
            merged.release_group,
            merged.title,
            artist_mbids=merged.artist_mbids,
            status=merged.status,
            barcode=merged.barcode,
            release_events=merged.release_events,
            asin=merged.asin,
            packaging=merged.packaging,
            packaging_id=merged.packaging_id,
            quality=merged.quality,
            language=merged.language,
            script=merged.script,
            disambiguation=merged.disambiguation,
            cover_art=merged.cover_art,
        )

    def remove_release(self, mbid: str) -> None:
        """Delete a release and its URL relationships: 404 afterwards."""
        del self._releases[mbid]
        self._links = [link for link in self._links if not (link.target_type == "release" and link.target == mbid)]

    # ----------------------------------------------------------------- faults

    def fail_next(self, count: int = 1) -> None:
        """Answer the next ``count`` ws/2 requests 503 with the rate-limit body (global limit hit)."""
        self._failures += count

    def reset_rate_limit(self) -> None:
        """Refill every client's token bucket."""
        self._buckets.clear()

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
        """``http://127.0.0.1:PORT/ws/2`` (after :meth:`start`)."""
        if self._base is None:
            raise RuntimeError("MusicBrainzEmulator is not started")
        return f"{self._base}/ws/2"

    # ---------------------------------------------------------------- handlers

    async def _handle(self, request: web.Request) -> web.Response:
        at = self.clock()
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        response = self._respond(request, at)
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        self.request_log.append(
            LoggedRequest(request.method, request.path, query, request.headers.get("User-Agent"), response.status, at)
        )
        return response

    def _take_token(self, ip: str, at: dt.datetime) -> bool:
        """Token bucket per IP (README 3(d): about one request per second on average)."""
        if self.rate_limit is None:
            return True
        rate, burst = self.rate_limit
        now = at.timestamp()
        tokens, last = self._buckets.get(ip, (float(burst), now))
        tokens = min(float(burst), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[ip] = (tokens, now)
            return False
        self._buckets[ip] = (tokens - 1.0, now)
        return True

    def _respond(self, request: web.Request, at: dt.datetime) -> web.Response:
        if not (request.path == "/ws/2" or request.path.startswith("/ws/2/")):
            return _error_response(404, "Not Found")
        # README 3(d): user-agent, source-IP and global checks all deny with the same 503.
        if is_anonymous_user_agent(request.headers.get("User-Agent")):
            return _json_response(_RATE_LIMIT_BODY, 503)
        if self._failures > 0:
            self._failures -= 1
            return _json_response(_RATE_LIMIT_BODY, 503)
        if not self._take_token(request.remote or "", at):
            return _json_response(_RATE_LIMIT_BODY, 503)
        if request.method != "GET":
            return _error_response(405, f"{request.method} is not allowed on this endpoint.")
        accept = request.headers.get("Accept", "")
        if request.query.get("fmt") != "json" and "application/json" not in accept:
            return web.Response(
                status=406, text="MusicBrainzEmulator serves JSON only: send fmt=json or Accept: application/json"
            )
        try:
            return _json_response(self._dispatch(request))
        except _WsError as exc:
            return _error_response(exc.status, exc.message)

    def _dispatch(self, request: web.Request) -> dict[str, Any]:
        parts = [p for p in request.path[len("/ws/2") :].split("/") if p]
        if not parts or len(parts) > 2:
            raise _WsError(404, "Not Found")
        resource = parts[0]
        if resource in _OTHER_RESOURCES:
            raise _not_emulated(f"/ws/2/{resource}")
        if resource not in ("artist", "url", "release-group", "release"):
            raise _WsError(404, "Not Found")
        q = request.query
        if resource == "artist":
            if len(parts) == 1:
                raise _not_emulated("artist browse and search")
            rels, incs = self._validate_inc(q, resource, "lookup")
            for inc in sorted(incs):
                raise _not_emulated(f"inc={inc}")
            return self._artist_lookup(parts[1], rels)
        if "query" in q and len(parts) == 1:
            raise _not_emulated("search")
        linked_params = {
            "url": ("resource",),
            "release-group": ("artist", "release"),
            "release": ("artist", "release-group"),
        }
        linked = next((name for name in linked_params[resource] if name in q), None)
        if len(parts) == 1 and linked is None:
            raise _not_emulated("search")
        kind = "lookup" if len(parts) == 2 else "browse"
        rels, incs = self._validate_inc(q, resource, kind)
        self._validate_type_and_status(q, resource)
        for inc in sorted(incs - _EMULATED_INCS):
            raise _not_emulated(f"inc={inc}")
        if resource == "url":
            if kind == "lookup":
                return self._url_object(self._get_url_by_id(parts[1]), rels)
            return self._url_by_resource(q.getall("resource"), rels)
        if resource == "release-group":
            if kind == "lookup":
                return self._release_group_object(self._get_release_group(parts[1]), rels, incs)
            assert linked is not None
            return self._browse_release_groups(q, linked, rels, incs)
        if kind == "lookup":
            return self._release_object(self._get_release(parts[1]), rels, incs, toplevel=True)
        assert linked is not None
        return self._browse_releases(q, linked, rels, incs)

    # ------------------------------------------------------------- validation

    @staticmethod
    def _validate_inc(q: MultiMapping[str], resource: str, kind: str) -> tuple[set[str], set[str]]:
        """``validate_inc`` (Validator.pm): returns (relation incs, other incs)."""
        values = q.getall("inc", [])
        if len(values) > 1:
            raise _WsError(400, "Inc arguments must be combined with a space, but you provided multiple parameters")
        incs = [i.replace("mediums", "media") for i in re.split(r"[+ ]", values[0])] if values else []
        allowed = _ALLOWED_INCS[(resource, kind)]
        extra = {e for i in incs for e in _EXTRA_INC.get(i, ())}
        rels: set[str] = set()
        others: set[str] = set()
        for inc in incs:
            if not inc:
                continue
            if inc in _REL_INCS:
                rels.add(inc)
                continue
            if inc not in allowed and inc not in extra:
                possible = [key for key, values_ in _EXTRA_INC.items() if inc in values_]
                if possible:
                    raise _WsError(
                        400,
                        f"{inc} is not a valid option for the inc parameter for the {resource} resource "
                        f"unless you specify one of the following other inc parameters: {', '.join(possible)}",
                    )
                raise _WsError(400, f"{inc} is not a valid inc parameter for the {resource} resource.")
            others.add(inc)
        return rels, others

    @staticmethod
    def _validate_type_and_status(q: Mapping[str, str], resource: str) -> None:
        """``validate_type`` and ``validate_status`` (Validator.pm)."""
        type_param = q.get("type", "")
        if type_param:
            if resource not in ("release", "release-group"):
                raise _WsError(400, "type is not a valid parameter unless releases or release-groups are requested.")
            for value in type_param.split("|"):
                if value and _strip_va(value) not in _TYPE_PARAM_VALUES:
                    raise _WsError(400, f"{value} is not a recognized release-group type.")
        status_param = q.get("status", "")
        if status_param:
            if resource != "release":
                raise _WsError(400, "status is not a valid parameter unless releases are requested.")
            for value in status_param.split("|"):
                if value and _strip_va(value) not in _STATUS_PARAM_VALUES:
                    raise _WsError(400, f"{value} is not a recognized release status.")

    @staticmethod
    def _limit_and_offset(q: Mapping[str, str]) -> tuple[int, int]:
        """``_limit_and_offset`` (ControllerBase/WS/2.pm): empty or 0 → default, capped at 100."""
        limit = q.get("limit") or str(_DEFAULT_LIMIT)
        offset = q.get("offset") or "0"
        if limit == "0":
            limit = str(_DEFAULT_LIMIT)
        if not (_NAT_RE.match(limit) and _NAT_RE.match(offset)):
            raise _WsError(400, "The 'limit' and 'offset' parameters must be positive integers")
        return min(int(limit), _MAX_LIMIT), int(offset)

    @staticmethod
    def _check_query_mbid(value: str) -> None:
        if not _MBID_RE.match(value):
            raise _WsError(400, "Invalid mbid.")

    # ---------------------------------------------------------------- lookups

    def _artist_lookup(self, mbid: str, rels: set[str]) -> dict[str, Any]:
        """``GET /ws/2/artist/{mbid}``: the artist object, with ``relations`` when a ``*-rels`` inc was
        given (only ``url-rels`` are held: the URLs linked to the artist, seen from it)."""
        self._check_query_mbid(mbid)
        artist = self._artists.get(mbid)
        if artist is None:
            raise _WsError(404, "Not Found")
        body = self._artist_object(artist)
        if rels:
            relations = []
            if "url-rels" in rels:
                for link in self._links:
                    if link.target_type == "artist" and link.target == mbid:
                        relation = self._relation(link, "forward")
                        relation["target-type"] = "url"
                        relation["url"] = {"id": self._urls[link.resource], "resource": link.resource}
                        relations.append(relation)
            body["relations"] = relations
        return body

    def _get_url_by_id(self, url_id: str) -> str:
        self._check_query_mbid(url_id)
        for resource, known_id in self._urls.items():
            if known_id == url_id:
                return resource
        raise _WsError(404, "Not Found")

    def _get_release_group(self, mbid: str) -> _ReleaseGroup:
        self._check_query_mbid(mbid)
        group = self._release_groups.get(mbid)
        if group is None:
            raise _WsError(404, "Not Found")
        return group

    def _get_release(self, mbid: str) -> _Release:
        self._check_query_mbid(mbid)
        release = self._releases.get(mbid)
        if release is None:
            raise _WsError(404, "Not Found")
        return release

    # -------------------------------------------------------------- rendering

    def _artist_object(self, artist: _Artist) -> dict[str, Any]:
        return {
            "country": artist.country,
            "disambiguation": artist.disambiguation,
            "id": artist.mbid,
            "name": artist.name,
            "sort-name": artist.sort_name,
            "type": artist.artist_type,
            "type-id": artist.artist_type_id,
        }

    def _artist_credit(self, artist_mbids: list[str]) -> list[dict[str, Any]]:
        credit = []
        for index, mbid in enumerate(artist_mbids):
            artist = self._artists[mbid]
            remaining = len(artist_mbids) - index - 1
            joinphrase = "" if remaining == 0 else (" & " if remaining == 1 else ", ")
            credit.append({"artist": self._artist_object(artist), "joinphrase": joinphrase, "name": artist.name})
        return credit

    @staticmethod
    def _relation(link: _Link, direction: str) -> dict[str, Any]:
        return {
            "attribute-ids": {},
            "attribute-values": {},
            "attributes": [],
            "begin": link.begin,
            "direction": direction,
            "end": link.end,
            "ended": link.ended,
            "source-credit": "",
            "target-credit": "",
            "type": link.link_type,
            "type-id": link.link_type_id,
        }

    def _url_object(self, resource: str, rels: set[str]) -> dict[str, Any]:
        """``Serializer/JSON/2/URL.pm``: ``relations`` only when a ``*-rels`` inc was given."""
        body: dict[str, Any] = {"id": self._urls[resource], "resource": resource}
        if rels:
            relations = []
            for link in self._links:
                if link.resource != resource or f"{link.target_type}-rels" not in rels:
                    continue
                relation = self._relation(link, "backward")
                relation["target-type"] = link.target_type
                if link.target_type == "artist":
                    relation["artist"] = self._artist_object(self._artists[link.target])
                else:
                    relation["release"] = self._release_object(
                        self._releases[link.target], set(), set(), toplevel=False
                    )
                relations.append(relation)
            body["relations"] = relations
        return body

    def _url_by_resource(self, resources: list[str], rels: set[str]) -> dict[str, Any]:
        if len(resources) == 1:
            resource = canonical_url(resources[0])
            if resource not in self._urls:
                raise _WsError(404, "Not Found")
            return self._url_object(resource, rels)
        found = sorted({canonical_url(r) for r in resources[:_MAX_RESOURCES]} & set(self._urls))
        return {"url-count": len(found), "url-offset": 0, "urls": [self._url_object(r, rels) for r in found]}

    def _release_group_object(self, group: _ReleaseGroup, rels: set[str], incs: set[str]) -> dict[str, Any]:
        """``Serializer/JSON/2/ReleaseGroup.pm`` plus the type ids; the emulator holds no release-group
        relationships, so a ``*-rels`` inc gives ``relations: []``."""
        primary = _PRIMARY_TYPES.get(group.primary_type) if group.primary_type else None
        body: dict[str, Any] = {
            "disambiguation": group.disambiguation,
            "first-release-date": group.first_release_date,
            "id": group.mbid,
            "primary-type": group.primary_type,
            "primary-type-id": primary[1] if primary else None,
            "secondary-type-ids": [_SECONDARY_TYPES[s] for s in group.secondary_types],
            "secondary-types": list(group.secondary_types),
            "title": group.title,
        }
        if "artist-credits" in incs:
            body["artist-credit"] = self._artist_credit(group.artist_mbids)
        if rels:
            body["relations"] = []
        return body

    def _release_object(self, release: _Release, rels: set[str], incs: set[str], *, toplevel: bool) -> dict[str, Any]:
        """``Serializer/JSON/2/Release.pm``; as a relationship target (``toplevel=False``) the server
        loads neither status nor packaging nor cover art, and sends no ``asin``."""
        body: dict[str, Any] = {}
        if toplevel:
            body["asin"] = release.asin
        body["barcode"] = release.barcode
        if toplevel:
            body["cover-art-archive"] = dict(release.cover_art)
        if release.release_events:
            first = release.release_events[0]
            body["country"] = _area_code(first["area"])
            body["date"] = first["date"]
        body["disambiguation"] = release.disambiguation
        body["id"] = release.mbid
        body["packaging"] = release.packaging if toplevel else None
        body["packaging-id"] = release.packaging_id if toplevel else None
        body["quality"] = release.quality
        if release.release_events:
            body["release-events"] = [dict(event) for event in release.release_events]
        body["status"] = release.status if toplevel else None
        body["status-id"] = _RELEASE_STATUSES[release.status] if toplevel and release.status else None
        body["text-representation"] = {"language": release.language, "script": release.script}
        body["title"] = release.title
        if toplevel and "artist-credits" in incs:
            body["artist-credit"] = self._artist_credit(release.artist_mbids)
        if "url-rels" in rels:
            relations = []
            for link in self._links:
                if link.target_type == "release" and link.target == release.mbid:
                    relation = self._relation(link, "forward")
                    relation["target-type"] = "url"
                    relation["url"] = {"id": self._urls[link.resource], "resource": link.resource}
                    relations.append(relation)
            body["relations"] = relations
        elif rels and toplevel:
            body["relations"] = []
        return body

    # ---------------------------------------------------------------- browses

    def _is_unofficial(self, group: _ReleaseGroup) -> bool:
        """``artist_release_group.unofficial``: no Official release, but some release with a status."""
        statuses = [r.status for r in self._releases.values() if r.release_group == group.mbid]
        return "Official" not in statuses and any(s is not None for s in statuses)

    def _release_group_sort_key(self, group: _ReleaseGroup) -> tuple[Any, ...]:
        """``_find_by_artist_fast`` index order (README 3(b))."""
        primary = (0, 0) if group.primary_type is None else (1, _PRIMARY_TYPES[group.primary_type][0])
        secondary = tuple(list(_SECONDARY_TYPES).index(s) for s in group.secondary_types)
        return (
            self._is_unofficial(group),
            primary,
            (len(secondary) > 0, secondary),
            _date_sort_key(group.first_release_date),
            group.title[:1].casefold(),
            group.seq,
        )

    def _browse_release_groups(
        self, q: Mapping[str, str], linked: str, rels: set[str], incs: set[str]
    ) -> dict[str, Any]:
        limit, offset = self._limit_and_offset(q)
        mbid = q[linked]
        self._check_query_mbid(mbid)
        if linked == "artist":
            if mbid not in self._artists:
                raise _WsError(404, "Not Found")
            groups = [g for g in self._release_groups.values() if mbid in g.artist_mbids]
            if q.get("release-group-status") == "website-default":
                groups = [g for g in groups if not self._is_unofficial(g)]
            groups = [g for g in groups if _matches_type(g, q.get("type", ""))]
            groups.sort(key=self._release_group_sort_key)
        else:
            release = self._releases.get(mbid)
            if release is None:
                raise _WsError(404, "Not Found")
            groups = [self._release_groups[release.release_group]]
        page = groups[offset : offset + limit]
        return {
            "release-group-count": len(groups),
            "release-group-offset": offset,
            "release-groups": [self._release_group_object(g, rels, incs) for g in page],
        }

    def _release_sort_key(self, release: _Release, *, by_artist: bool) -> tuple[Any, ...]:
        """``find_by_release_group`` / ``find_by_artist`` order (README 3(c))."""
        first = release.release_events[0] if release.release_events else None
        area = first["area"] if first else None
        country = area.get("name") if area else None
        key: tuple[Any, ...] = (
            _date_sort_key(first["date"] if first else None),
            (country is None, country or ""),
            (release.barcode is None, release.barcode or ""),
        )
        if by_artist:
            key += (release.title.casefold(),)
        return (*key, release.seq)

    def _browse_releases(self, q: Mapping[str, str], linked: str, rels: set[str], incs: set[str]) -> dict[str, Any]:
        limit, offset = self._limit_and_offset(q)
        mbid = q[linked]
        self._check_query_mbid(mbid)
        statuses = {_strip_va(s) for s in q.get("status", "").split("|") if s}
        if linked == "artist":
            if mbid not in self._artists:
                raise _WsError(404, "Not Found")
            releases = [
                r
                for r in self._releases.values()
                if mbid in r.artist_mbids and _matches_type(self._release_groups[r.release_group], q.get("type", ""))
            ]
        else:
            if mbid not in self._release_groups:
                raise _WsError(404, "Not Found")
            releases = [r for r in self._releases.values() if r.release_group == mbid]
        if statuses:
            releases = [r for r in releases if r.status is not None and r.status.lower() in statuses]
        releases.sort(key=lambda r: self._release_sort_key(r, by_artist=linked == "artist"))
        page = releases[offset : offset + limit]
        return {
            "release-count": len(releases),
            "release-offset": offset,
            "releases": [self._release_object(r, rels, incs, toplevel=True) for r in page],
        }


def _strip_va(value: str) -> str:
    """The ``sa-``/``va-`` forms of type and status names (Validator.pm ``load_type_and_status``)."""
    return value[3:] if value[:3] in ("sa-", "va-") else value


def _matches_type(group: _ReleaseGroup, type_param: str) -> bool:
    """``_where_filter``: primary types OR-ed; every secondary type given must be present."""
    values = [_strip_va(v) for v in type_param.split("|") if v]
    primaries = {v for v in values if v in _PRIMARY_PARAM_VALUES}
    secondaries = {v for v in values if v not in _PRIMARY_PARAM_VALUES}
    if primaries and (group.primary_type or "").lower() not in primaries:
        return False
    return secondaries <= {s.lower() for s in group.secondary_types}


def _area_code(area: Mapping[str, Any] | None) -> str | None:
    """The country code of a release event's area (``iso-3166-1-codes[0]``), or ``None``."""
    if not area:
        return None
    codes = area.get("iso-3166-1-codes") or []
    return codes[0] if codes else None
