"""``release-bot config``: the configuration in effect with secrets masked, and the reference and the
example file generated from the settings model, which must equal the committed files."""

from __future__ import annotations

import io
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.cli.config import example_toml, reference_markdown, run_config
from bot.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[3]
CONFIG = """
[discord]
token = "file-token-value"
shard_count = 2
shard_ids = [1]
[spotify]
client_id = "file-client-id"
market = "se"
max_concurrency = 8
[default_schedule]
day = "mon"
time = "9:30"
[coordination]
heartbeat_seconds = 5
lease_seconds = 30.5
"""
ENV = {
    "SPOTIFY_CLIENT_SECRET": "env-client-secret",
    "DATABASE_URL": "postgresql+asyncpg://rb:hunter2@db:5432/rb",
    "HOME": "/nowhere",
}


def config_output(tmp_path, text=CONFIG, environ=ENV) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text)
    out = io.StringIO()
    assert run_config(path, environ, out=out) == 0
    return out.getvalue()


def test_prints_the_file_environment_and_defaults_as_toml(tmp_path):
    data = tomllib.loads(config_output(tmp_path))
    assert data["discord"]["shard_count"] == 2 and data["discord"]["shard_ids"] == [1]
    assert data["spotify"]["market"] == "SE" and data["spotify"]["max_concurrency"] == 8
    assert data["spotify"]["requests_per_run"] == 5000  # a default
    assert data["default_schedule"] == {"day": "monday", "time": "09:30", "timezone": "UTC"}
    assert data["coordination"] == {"heartbeat_seconds": 5, "lease_seconds": 30.5}
    assert data["due_scan"] == {"interval_seconds": 60}
    assert set(data) == {
        "discord",
        "spotify",
        "tracking",
        "database",
        "due_scan",
        "default_schedule",
        "delivery",
        "coordination",
        "release_day",
        "musicbrainz",
        "lastfm",
        "http",
        "logging",
        "sentry",
    }
    assert data["http"] == {"host": "127.0.0.1"}  # port left out: the endpoints are off


def test_masks_every_secret_and_the_database_password(tmp_path):
    out = config_output(tmp_path)
    for secret in ("file-token-value", "file-client-id", "env-client-secret", "hunter2"):
        assert secret not in out
    data = tomllib.loads(out)
    assert data["discord"]["token"] == "********"  # set in the file
    assert data["spotify"]["client_id"] == "********"
    assert data["spotify"]["client_secret"] == "********"  # set in the environment
    assert data["database"]["url"] == "postgresql+asyncpg://rb:********@db:5432/rb"
    assert "# Environment: SPOTIFY_CLIENT_SECRET, DATABASE_URL." in out


def test_the_lastfm_api_key_is_masked(tmp_path):
    out = config_output(tmp_path, '[lastfm]\napi_key = "lastfm-key-value"\n', {})
    assert "lastfm-key-value" not in out
    assert tomllib.loads(out)["lastfm"]["api_key"] == "********"


def test_the_sentry_dsn_is_masked(tmp_path):
    out = config_output(tmp_path, "", {"SENTRY_DSN": "https://dsnkey123@o1.ingest.sentry.io/7"})
    assert "dsnkey123" not in out
    assert tomllib.loads(out)["sentry"] == {"dsn": "********", "environment": "production"}


def test_an_unset_secret_is_shown_empty(tmp_path):
    data = tomllib.loads(config_output(tmp_path, "[discord]\nshard_count = 1\n", {}))
    assert data["discord"]["token"] == "" and data["spotify"]["client_secret"] == ""
    assert data["discord"]["shard_ids"] == [0]
    assert "shard_count" not in tomllib.loads(config_output(tmp_path, "", {}))["discord"]


def test_the_output_loads_back_to_the_same_settings(tmp_path):
    out = config_output(tmp_path, environ={"SPOTIFY_CLIENT_SECRET": "s"})
    again = tmp_path / "again.toml"
    again.write_text(out)
    original = load_settings(tmp_path / "config.toml", {"SPOTIFY_CLIENT_SECRET": "s"})
    reloaded = load_settings(again, {})
    assert reloaded.model_dump(exclude={"discord": {"token"}, "spotify": {"client_id", "client_secret"}}) == (
        original.model_dump(exclude={"discord": {"token"}, "spotify": {"client_id", "client_secret"}})
    )


def test_cli_config_exits_0_and_a_bad_config_exits_2_in_one_line(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(CONFIG)
    env = {"PATH": "", "HOME": str(tmp_path), "DISCORD_TOKEN": "env-token-value"}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "config", "--config", str(good)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "env-token-value" not in proc.stdout and "file-token-value" not in proc.stdout
    assert tomllib.loads(proc.stdout)["discord"]["token"] == "********"
    bad = tmp_path / "bad.toml"
    bad.write_text("[spotify]\nmax_concurrency = 0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "config", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2
    assert proc.stderr == "config error: spotify.max_concurrency: must be a whole number from 1 to 64, got 0\n"


@pytest.mark.parametrize("command", ["run", "check", "migrate", "config"])
def test_a_config_file_given_but_missing_exits_2_naming_it(tmp_path, command):
    """A typo in ``--config`` never starts the bot on defaults and environment alone."""
    missing = tmp_path / "confg.toml"
    env = {
        "PATH": "",
        "HOME": str(tmp_path),
        "DISCORD_TOKEN": "t",
        "SPOTIFY_CLIENT_ID": "i",
        "SPOTIFY_CLIENT_SECRET": "s",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bot", command, "--config", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"config error: --config: no such file: {missing}\n"


def test_the_committed_reference_is_what_the_model_generates():
    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == reference_markdown(), "run: release-bot config --reference > docs/configuration.md"


def test_the_committed_example_is_what_the_model_generates():
    committed = (REPO / "config.example.toml").read_text(encoding="utf-8")
    assert committed == example_toml(), "run: release-bot config --example > config.example.toml"


def test_the_example_file_is_every_default_and_loads():
    example = REPO / "config.example.toml"
    settings = load_settings(example, {}, require_secrets=False)
    assert settings == Settings()
    data = tomllib.loads(example.read_text(encoding="utf-8"))
    for section, model in Settings.model_fields.items():
        assert model.annotation is not None
        # every key is there, written out or (when unset by default) shown in a comment
        for key in model.annotation.model_fields:
            assert key in data[section] or f"# {key} = " in example.read_text(encoding="utf-8")


def test_the_reference_documents_every_key_with_its_environment_variable():
    reference = reference_markdown()
    for section, model in Settings.model_fields.items():
        assert f"## `[{section}]`" in reference
        assert model.annotation is not None
        for key in model.annotation.model_fields:
            assert f"| `{key}` |" in reference
    for line in ("| `token` | secret string |", "`DISCORD_TOKEN` |", "`DATABASE_URL` |"):
        assert line in reference
    assert "| `max_concurrency` | whole number | `4` | a whole number from 1 to 64 |" in reference
    assert "`[scheduler]`: use `[due_scan] interval_seconds`" in reference


def test_cli_prints_the_generated_files(tmp_path):
    env = {"PATH": "", "HOME": str(tmp_path)}
    for flag, expected in (("--reference", reference_markdown()), ("--example", example_toml())):
        proc = subprocess.run(
            [sys.executable, "-m", "bot", "config", flag],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == expected
