"""``release-bot migrate``: migrates the configured database to head and exits 0, as a real process."""

from __future__ import annotations

import asyncio
import socket
import sys

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from storage.db import MIGRATIONS_DIR, open_database
from tests import backend


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


async def migrate(config_path, cwd) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "migrate",
        "--config",
        str(config_path),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None  # communicate() waited for the exit
    return proc.returncode, out.decode(), err.decode()


async def test_migrate_brings_an_empty_database_to_head_and_exits_0(tmp_path):
    url = backend.database_url(tmp_path, "deploy", migrated=False)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\napplication_name = "rb-migrate"\n')  # no secrets needed
    code, out, err = await migrate(config, tmp_path)
    assert code == 0, err
    assert out.strip() == f"database migrated to revision {head_revision()} (head)"
    db = await open_database(url, migrate=False)
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one() == head_revision()
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"guilds", "artists", "follows", "releases", "deliveries", "runs"} <= tables
    finally:
        await db.close()
    code, out, err = await migrate(config, tmp_path)  # already at head: nothing to do, still 0
    assert code == 0 and "(head)" in out, err


async def test_migrate_against_an_unreachable_server_says_so_in_one_line_and_exits_1(tmp_path):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "postgresql+asyncpg://bot@127.0.0.1:{port}/bot"\n')
    code, out, err = await migrate(config, tmp_path)
    assert code == 1 and out == ""
    assert err.startswith("migrate: the database could not be migrated:") and err.count("\n") == 1, err
