"""Config loading: defaults, env overrides, and one clear line naming a bad key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.settings import ConfigError, load_config

GOOD = """
[discord]
token = "file-token"
[spotify]
client_id = "id"
client_secret = "secret"
"""


def write(tmp_path, text):
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_defaults_fill_everything_but_secrets(tmp_path):
    s = load_config(write(tmp_path, GOOD), {})
    assert s.discord.api_base_url == "https://discord.com/api/v10"
    assert s.discord.gateway_url == "wss://gateway.discord.gg/"
    assert s.spotify.market == "US"
    assert s.database_url == "sqlite+aiosqlite:///data/release-bot.db"
    assert (s.database.pool_size, s.database.pool_pre_ping, s.database.application_name) == (10, True, "release-bot")
    assert s.scan_interval_seconds == 60
    assert (s.schedule.day, s.schedule.time, s.schedule.timezone) == (4, "12:00", "UTC")


def test_shards_absent_mean_one_unsharded_process(tmp_path):
    s = load_config(write(tmp_path, GOOD), {})
    assert (s.discord.shard_count, s.discord.shard_ids) == (None, None)


@pytest.mark.parametrize(
    "keys, count, ids",
    [
        ("shard_count = 4\nshard_ids = [3, 1]", 4, (1, 3)),
        ("shard_count = 2\nshard_ids = [0]", 2, (0,)),
        ("shard_count = 3", 3, (0, 1, 2)),  # shard_ids left out: every shard in this process
        ("shard_count = 1", 1, (0,)),
    ],
)
def test_shard_keys(tmp_path, keys, count, ids):
    s = load_config(write(tmp_path, GOOD.replace("[discord]", "[discord]\n" + keys)), {})
    assert (s.discord.shard_count, s.discord.shard_ids) == (count, ids)


def test_environment_overrides_secrets_and_database(tmp_path):
    env = {
        "DISCORD_TOKEN": "env-token",
        "SPOTIFY_CLIENT_ID": "eid",
        "SPOTIFY_CLIENT_SECRET": "esecret",
        "DATABASE_URL": "sqlite+aiosqlite:///x.db",
    }
    s = load_config(write(tmp_path, GOOD), env)
    assert (s.discord.token, s.spotify.client_id, s.spotify.client_secret) == ("env-token", "eid", "esecret")
    assert s.database_url == "sqlite+aiosqlite:///x.db"


def test_secrets_are_not_in_repr(tmp_path):
    s = load_config(write(tmp_path, GOOD), {})
    assert "file-token" not in repr(s) and "secret" not in repr(s.spotify)


@pytest.mark.parametrize(
    "text, key",
    [
        ("[spotify]\nclient_id='a'\nclient_secret='b'", "discord.token"),
        (GOOD + "\n[scheduler]\nscan_interval_seconds = 0", "scheduler.scan_interval_seconds"),
        (GOOD.replace("[discord]", '[discord]\ngateway_url = "http://x"'), "discord.gateway_url"),
        (GOOD + "\n[schedule]\ntimezone = 'Mars/Olympus'", "schedule.timezone"),
        (GOOD + "\n[schedule]\ntime = '25:00'", "schedule.time"),
        (GOOD + "\n[schedule]\nday = 'someday'", "schedule.day"),
        (GOOD + "\n[database]\nurl = 'nonsense'", "database.url"),
        (GOOD + "\n[database]\npool_size = 0", "database.pool_size"),
        (GOOD + "\n[database]\npool_size = '10'", "database.pool_size"),
        (GOOD + "\n[database]\npool_pre_ping = 'yes'", "database.pool_pre_ping"),
        (GOOD + "\n[database]\napplication_name = ''", "database.application_name"),
        (GOOD + "\n[database]\napplication_name = 'é-bot'", "database.application_name"),
        (GOOD + "\n[database]\napplication_name = 5", "database.application_name"),
        (GOOD.replace('client_id = "id"', 'client_id = "id"\nmarket = "USA"'), "spotify.market"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 0"), "discord.shard_count"),
        (GOOD.replace("[discord]", '[discord]\nshard_count = "2"'), "discord.shard_count"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = true"), "discord.shard_count"),
        (GOOD.replace("[discord]", "[discord]\nshard_ids = [0]"), "discord.shard_ids"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 2\nshard_ids = [2]"), "discord.shard_ids"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 2\nshard_ids = [-1]"), "discord.shard_ids"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 2\nshard_ids = []"), "discord.shard_ids"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 2\nshard_ids = 1"), "discord.shard_ids"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 3\nshard_ids = [1, 1]"), "discord.shard_ids"),
    ],
)
def test_bad_value_names_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), {})
    assert err.value.key == key
    assert key in str(err.value) and "\n" not in str(err.value)


def test_cli_prints_one_line_not_a_traceback(tmp_path):
    cfg = write(tmp_path, "[discord]\napi_base_url = 'ftp://nope'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "discord.token" in proc.stderr and "Traceback" not in proc.stderr


def test_database_engine_options_are_read(tmp_path):
    s = load_config(
        write(tmp_path, GOOD + "\n[database]\npool_size = 3\npool_pre_ping = false\napplication_name = 'rb-eu-1'"), {}
    )
    assert s.database.engine_options() == {"pool_size": 3, "pool_pre_ping": False, "application_name": "rb-eu-1"}
