"""docker-compose.yml (PostgreSQL + migrate + two bot processes) checked against the config schema.

No Docker is needed: the file is parsed, each bot container's config file is loaded with
``bot.settings.load_settings`` under the environment the container would get, and the wiring a
working deployment needs is asserted (shards covering every shard once, one database, the
migration before the bots, PostgreSQL healthy before the migration).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

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
