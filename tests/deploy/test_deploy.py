"""docker-compose.yml (PostgreSQL + migrate + two bot processes) checked against the config schema.

No Docker is needed: the file is parsed, each bot container's config file is loaded with
``bot.settings.load_settings`` under the environment the container would get, and the wiring a
working deployment needs is asserted (shards covering every shard once, one database, the
migration before the bots, PostgreSQL healthy before the migration), and each bot process's
operations endpoints: scraped by deploy/prometheus.yml, and its health check asking its own
``/readyz`` with Python (the image has no curl), run for real against a ready and an unready bot.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
import yaml

from bot.ops.health import Readiness
from bot.ops.http import OpsServer
from bot.ops.metrics import Metrics
from bot.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
SECRETS = {
    "POSTGRES_PASSWORD": "pw",
    "DISCORD_TOKEN": "token",
    "SPOTIFY_CLIENT_ID": "id",
    "SPOTIFY_CLIENT_SECRET": "secret",
}


def _substitute(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}`` / ``${VAR:?message}`` / ``${VAR:-default}`` interpolation."""

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        if op == ":-":
            return arg or ""
        raise AssertionError(f"${{{name}}} is required: {arg}")

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:\?|:-)([^}]*))?\}", one, value)


def _services() -> dict:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data["services"]


def _config_of(service: dict) -> tuple[Path, dict[str, str]]:
    """The host path of the ``--config`` file a service's command names, and its environment."""
    command = service["command"]
    container_path = command[command.index("--config") + 1]
    for volume in service["volumes"]:
        host, target = volume.split(":")[:2]
        if container_path.startswith(target.rstrip("/") + "/"):
            path = REPO / host / container_path[len(target.rstrip("/")) + 1 :]
            break
    else:
        raise AssertionError(f"{container_path} is not mounted")
    env = {k: _substitute(str(v), SECRETS) for k, v in (service.get("environment") or {}).items()}
    return path, env


def test_every_bot_process_config_loads_and_the_shards_cover_each_shard_once():
    services = _services()
    bots = {name: s for name, s in services.items() if s.get("command", [None])[0] == "run"}
    assert len(bots) >= 2
    shard_count = None
    seen: list[int] = []
    urls = set()
    for name, service in bots.items():
        path, env = _config_of(service)
        settings = load_settings(path, env)  # raises ConfigError naming the key on any bad or unknown key
        assert settings.discord.token.get_secret_value() == "token"
        assert settings.spotify.client_secret.get_secret_value() == "secret"
        assert settings.database_url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in settings.database_url
        urls.add(settings.database_url)
        assert settings.discord.shard_count, f"{name}: no shard_count"
        assert settings.discord.shard_ids is not None, f"{name}: no shard_ids"
        shard_count = shard_count or settings.discord.shard_count
        assert settings.discord.shard_count == shard_count
        seen += list(settings.discord.shard_ids)
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert shard_count is not None
    assert sorted(seen) == list(range(shard_count))  # every shard answered by exactly one process
    assert len(urls) == 1  # one database for all


def test_the_migration_runs_once_before_the_bots_on_a_healthy_postgresql():
    services = _services()
    migrate = services["migrate"]
    assert migrate["command"][0] == "migrate"
    path, env = _config_of(migrate)
    settings = load_settings(path, env, require_secrets=False)
    bot_path, bot_env = _config_of(services["bot-0"])
    assert settings.database_url == load_settings(bot_path, bot_env).database_url
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    postgres_env = services["postgres"]["environment"]
    assert f"{postgres_env['POSTGRES_USER']}:" in settings.database_url
    assert settings.database_url.endswith("/" + postgres_env["POSTGRES_DB"])


def _bots() -> dict[str, dict]:
    return {name: s for name, s in _services().items() if s.get("command", [None])[0] == "run"}


def test_each_bot_serves_its_endpoints_and_prometheus_scrapes_each_one():
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for group in job["static_configs"] for t in group["targets"]}
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in scrape["scrape_configs"])
    expected = set()
    for name, service in _bots().items():
        path, env = _config_of(service)
        http = load_settings(path, env).http
        assert http.port is not None, f"{name}: [http] port is not set: no /metrics, no health check"
        assert http.host == "0.0.0.0", f"{name}: [http] must listen beyond the container's loopback"
        expected.add(f"{name}:{http.port}")
    assert targets == expected


def _healthcheck_command(service: dict) -> list[str]:
    check = service["healthcheck"]
    test = check["test"]
    assert test[0] == "CMD" and test[1] == "python", "python:3.11-slim has no curl: the check runs python"
    assert check["interval"] and check["retries"] >= 1 and "start_period" in check
    return test[1:]


def test_the_bot_health_checks_ask_their_own_readyz():
    for name, service in _bots().items():
        path, env = _config_of(service)
        port = load_settings(path, env).http.port
        command = _healthcheck_command(service)
        assert f"http://127.0.0.1:{port}/readyz" in command[-1], f"{name}: the check must ask its own /readyz"


@pytest.mark.parametrize("ready", [True, False])
async def test_the_health_check_command_passes_on_200_and_fails_on_503(db, ready):
    """The compose health check, run as Docker would (its python command), against a real /readyz."""
    ops = OpsServer(Metrics(process_collectors=False), Readiness(db, shards=lambda: {0: (ready, 0.1)}), port=0)
    await ops.start()
    try:
        command = _healthcheck_command(_services()["bot-0"])
        command = [sys.executable, *command[1:-1], command[-1].replace(":9100/", f":{ops.port}/")]
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        assert (await asyncio.wait_for(proc.wait(), 30) == 0) is ready
    finally:
        await ops.stop()
