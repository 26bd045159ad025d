"""``bot.ops.http`` and ``bot.ops.health``: /livez, /readyz (each check, its failure named, coming back
by itself) and /metrics over real HTTP, on this run's database backend."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sqlalchemy import text

from bot.ops.health import Readiness
from bot.ops.http import OpsServer
from bot.ops.metrics import Metrics
from storage import health
from storage.db import Database
from tests.e2e.ops import failing_statements


@pytest.fixture
def shards() -> dict[int, tuple[bool, float | None]]:
    return {0: (True, 0.04), 1: (True, 0.05)}


@pytest.fixture
async def server(db, shards):
    metrics = Metrics()
    metrics.shards = lambda: shards
    ops = OpsServer(metrics, Readiness(db, shards=metrics.shards, timeout=1.0), port=0)
    await ops.start()
    try:
        yield ops
    finally:
        await ops.stop()


async def get(ops: OpsServer, path: str) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{ops.port}{path}", timeout=aiohttp.ClientTimeout(total=10)) as resp,
    ):
        return resp.status, await resp.text(), resp.headers.get("Content-Type", "")


async def test_livez_and_metrics_answer(server):
    assert server.port > 0
    status, body, _ = await get(server, "/livez")
    assert (status, body) == (200, "ok\n")
    status, body, content_type = await get(server, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert "# TYPE release_bot_runs_total counter" in body
    assert "release_bot_shards_ready 2.0" in body
    assert (await get(server, "/nothing"))[0] == 404


async def test_readyz_names_the_failing_check_and_recovers_by_itself(server, db, shards):
    status, body, _ = await get(server, "/readyz")
    assert status == 200 and body.startswith("ready\n")
    assert "shards: ok 2 ready" in body and "database: ok" in body and "migrations: ok" in body

    shards[1] = (False, None)  # shard 1 disconnected
    status, body = (await get(server, "/readyz"))[:2]
    assert status == 503 and body.startswith("not ready\n")
    assert "shards: FAIL shard(s) 1 of 2 not ready" in body and "database: ok" in body
    shards[1] = (True, 0.05)

    with failing_statements(db):
        status, body = (await get(server, "/readyz"))[:2]
        assert status == 503
        assert "database: FAIL OperationalError" in body and "migrations: FAIL unknown" in body
        assert "shards: ok" in body
        assert (await get(server, "/livez"))[0] == 200  # alive, only not ready
    status, body = (await get(server, "/readyz"))[:2]
    assert status == 200, body


async def test_readyz_fails_while_migrations_are_behind(server, db):
    async with db.transaction() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = '0007'"))
    try:
        status, body = (await get(server, "/readyz"))[:2]
        assert status == 503
        assert f"migrations: FAIL at 0007, code needs {health.head_revision()}" in body
        assert "database: ok" in body
    finally:  # a PostgreSQL test database is recycled for later tests
        async with db.transaction() as session:
            await session.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": health.head_revision()}
            )
    assert (await get(server, "/readyz"))[0] == 200


async def test_a_database_that_does_not_answer_fails_within_the_timeout(db, monkeypatch):
    async def hang(_db: Database) -> None:
        await asyncio.sleep(30)

    monkeypatch.setattr(health, "ping", hang)  # bot.ops.health calls storage.health.ping
    readiness = Readiness(db, shards=lambda: {0: (True, 0.1)}, timeout=0.2)
    report = await asyncio.wait_for(readiness.check(), 5)
    assert not report.ready
    assert [(c.name, c.ok) for c in report.checks] == [("shards", True), ("database", False), ("migrations", False)]
    assert "no answer within 0.2 s" in report.text()


async def test_no_shard_known_yet_is_not_ready(db):
    report = await Readiness(db, shards=None).check()
    assert not report.ready and "shards: FAIL not connected yet" in report.text()


async def test_a_taken_port_is_an_error(server, db):
    other = OpsServer(Metrics(process_collectors=False), Readiness(db), port=server.port)
    with pytest.raises(OSError):
        await other.start()
