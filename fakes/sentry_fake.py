"""A Sentry ingestion endpoint on loopback, for tests of error reporting (bot/ops/errors.py).

``POST /api/{project}/envelope/`` accepts what sentry-sdk's HTTP transport sends: an envelope
(Sentry developer docs, "Envelopes": a JSON header line, then items, each a JSON item header
line — with ``length`` or not — and its payload), compressed (as aiohttp decodes it) or not. Every request
is kept raw (:attr:`SentryFake.requests`: headers and decompressed body) and parsed
(:attr:`SentryFake.envelopes`); :meth:`SentryFake.events` gives the error events' payloads.

``async with SentryFake() as sentry:`` starts it; ``sentry.dsn("key")`` is a DSN pointing at it.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fakes.loopback import LoopbackServer


@dataclass
class Envelope:
    """One envelope: its ``header`` and its ``items`` as ``(item header, payload bytes)``."""

    header: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)


@dataclass
class Request:
    """One request as received: the ``project`` of its path, its headers, its decompressed body."""

    project: str
    headers: dict[str, str]
    body: bytes


def parse_envelope(body: bytes) -> Envelope:
    """Parse an envelope body. Raises ``ValueError`` for one that is not an envelope."""
    head, _, rest = body.partition(b"\n")
    envelope = Envelope(json.loads(head))
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        if not line.strip():
            continue
        item_header = json.loads(line)
        length = item_header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:]
            rest = rest[1:] if rest.startswith(b"\n") else rest
        envelope.items.append((item_header, payload))
    return envelope


def _decompress(body: bytes) -> bytes:
    """The envelope: aiohttp already undid a ``Content-Encoding`` it knows; a gzip body left is undone here."""
    return gzip.decompress(body) if body.startswith(b"\x1f\x8b") else body


class SentryFake(LoopbackServer):
    """The fake ingestion server (see the module docstring)."""

    def __init__(self) -> None:
        self._runner = None
        self._base = None
        self.requests: list[Request] = []
        self.envelopes: list[Envelope] = []

    def dsn(self, key: str, project: int = 1) -> str:
        """A DSN with public key ``key`` for ``project`` on this server (started)."""
        assert self._base is not None, "not started"
        scheme, _, host = self._base.partition("://")
        return f"{scheme}://{key}@{host}/{project}"

    def events(self) -> list[dict[str, Any]]:
        """The payloads of every ``event`` item received, oldest first."""
        return [
            json.loads(payload) for env in self.envelopes for head, payload in env.items if head.get("type") == "event"
        ]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        if request.method != "POST" or len(parts) != 3 or parts[0] != "api" or parts[2] != "envelope":
            return web.json_response({"detail": "not found"}, status=404)
        body = _decompress(await request.read())
        self.requests.append(Request(parts[1], dict(request.headers), body))
        self.envelopes.append(parse_envelope(body))
        return web.json_response({})
