"""The operations endpoints of one process, served by ``aiohttp.web`` on the bot's own event loop
(docs/operations.md, "Metrics" and "Health"):

* ``GET /metrics`` — the Prometheus text exposition format of :class:`bot.ops.metrics.Metrics`;
* ``GET /livez`` — 200 ``ok`` whenever the event loop answers;
* ``GET /readyz`` — 200 when :class:`bot.ops.health.Readiness` passes, else 503; the body lists
  each check (``shards``, ``database``, ``migrations``) and says which failed.

Started by the Discord client after the core is built, stopped when it closes; off (nothing
listens) unless ``[http] port`` is set.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.ops.health import Readiness, ShardStates
from bot.ops.metrics import Metrics
from bot.settings import HttpSettings
from bot.wiring import Core

log = logging.getLogger(__name__)


class OpsServer:
    """``/metrics``, ``/livez`` and ``/readyz`` on ``host``:``port`` (0: any free port, then
    :attr:`port` tells which). :meth:`start` raises ``OSError`` when the port cannot be bound."""

    def __init__(self, metrics: Metrics, readiness: Readiness, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.metrics = metrics
        self.readiness = readiness
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application with the three routes."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self) -> None:
        """Listen (idempotent); :attr:`port` is then the bound port."""
        if self._runner is not None:
            return
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        if addresses and isinstance(addresses[0], tuple):
            self.port = int(addresses[0][1])
        log.info("operations endpoints on http://%s:%d (/metrics, /livez, /readyz)", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _livez(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        report = await self.readiness.check()
        return web.Response(text=report.text(), status=200 if report.ready else 503)


async def ops_server(http: HttpSettings, core: Core, shards: ShardStates) -> OpsServer | None:
    """Start the operations endpoints of ``[http]`` on ``core`` (its metrics and store) with the shard
    states ``shards``; None, and nothing listens, when ``port`` is not set or the core keeps no metrics.
    Raises ``OSError`` when the port cannot be bound."""
    if http.port is None or core.metrics is None:
        return None
    server = OpsServer(core.metrics, Readiness(core.db, shards=shards), host=http.host, port=http.port)
    await server.start()
    return server
