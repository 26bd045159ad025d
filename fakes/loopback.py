"""The loopback HTTP server the music emulators share (MusicBrainz, ListenBrainz, Last.fm): one aiohttp
app answering every path with the emulator's ``_handle``, on ``127.0.0.1`` and a free port by default.

An emulator subclasses :class:`LoopbackServer`, sets ``self._runner = None`` and ``self._base = None``
in its ``__init__``, implements ``_handle`` and exposes its own ``base_url`` from ``self._base``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from aiohttp import web


class LoopbackServer:
    """Start/stop and ``async with`` for an emulator. ``handler_args``: aiohttp's request-parser
    limits (e.g. ``max_line_size`` for long query strings)."""

    handler_args: ClassVar[dict[str, Any]] = {}
    _runner: web.AppRunner | None
    _base: str | None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (``port=0`` picks a free port). Raises ``RuntimeError`` when started."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        app = web.Application(handler_args=self.handler_args or None)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._base = f"http://{bound_host}:{bound_port}"

    async def stop(self) -> None:
        """Close the server. Idempotent."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        await runner.cleanup()
        self._base = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
