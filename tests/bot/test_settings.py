"""Settings: defaults, environment overrides, secrets kept out of sight, and one clear line naming a
bad key — an unknown or renamed one with the closest known name, a bad value with what is wrong."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from bot.settings import (
    ConfigError,
    DatabaseSettings,
    DiscordSettings,
    ScheduleSettings,
    Settings,
    UnknownKeyError,
    load_settings,
)

GOOD = """
[discord]
token = "file-token"
[spotify]
client_id = "file-client-id"
client_secret = "file-client-secret"
"""
SECRETS = ("file-token", "file-client-id", "file-client-secret")


def write(tmp_path, text):
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def refused(tmp_path, text, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text), {}, **kwargs)
    assert "\n" not in str(err.value)
    return err.value


def run_cli(tmp_path, *args):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "", "HOME": str(tmp_path)},
    )


def test_defaults_fill_everything_but_secrets(tmp_path):
    s = load_settings(write(tmp_path, GOOD), {})
    assert s.discord.api_base_url == "https://discord.com/api/v10"
    assert s.discord.gateway_url == "wss://gateway.discord.gg/"
    assert s.spotify.market == "US"
    assert (s.spotify.requests_per_run, s.spotify.requests_per_day) == (5000, 20000)
    assert (s.spotify.max_concurrency, s.spotify.rate_limit_per_30s) == (4, 150)
    assert (s.tracking.reserve_share, s.tracking.economy, s.tracking.recheck_share) == (0.25, False, 0.125)
    assert (s.tracking.economy_inactive_days, s.tracking.economy_every) == (365, 4)
    assert s.database_url == s.database.url == "sqlite+aiosqlite:///data/release-bot.db"
    assert (s.database.pool_size, s.database.pool_pre_ping, s.database.application_name) == (10, True, "release-bot")
    assert s.due_scan.interval_seconds == 60
    assert (s.default_schedule.day, s.default_schedule.time, s.default_schedule.timezone) == (4, "12:00", "UTC")
    assert (s.coordination.heartbeat_seconds, s.coordination.lease_seconds) == (10, 60)


def test_a_missing_file_means_environment_and_defaults(tmp_path):
    env = {"DISCORD_TOKEN": "t", "SPOTIFY_CLIENT_ID": "i", "SPOTIFY_CLIENT_SECRET": "s"}
    s = load_settings(tmp_path / "absent.toml", env)
    assert s.discord.token.get_secret_value() == "t" and s.spotify.market == "US"
    assert load_settings(None, env).discord.token.get_secret_value() == "t"


def test_shards_absent_mean_one_unsharded_process(tmp_path):
    s = load_settings(write(tmp_path, GOOD), {})
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
    s = load_settings(write(tmp_path, GOOD.replace("[discord]", "[discord]\n" + keys)), {})
    assert (s.discord.shard_count, s.discord.shard_ids) == (count, ids)


def test_values_are_normalised(tmp_path):
    text = GOOD.replace("[discord]", '[discord]\napi_base_url = " http://127.0.0.1:9/api/ "')
    text = text.replace('client_id = "file-client-id"', 'client_id = " file-client-id "\nmarket = "de"')
    text += "\n[default_schedule]\nday = 'Mon.'\ntime = '9:05'\ntimezone = 'europe/berlin'"
    s = load_settings(write(tmp_path, text), {})
    assert s.discord.api_base_url == "http://127.0.0.1:9/api"
    assert s.spotify.client_id.get_secret_value() == "file-client-id"
    assert s.spotify.market == "DE"
    assert (s.default_schedule.day, s.default_schedule.time, s.default_schedule.timezone) == (
        0,
        "09:05",
        "Europe/Berlin",
    )


def test_environment_overrides_secrets_and_database(tmp_path):
    env = {
        "DISCORD_TOKEN": "env-token",
        "SPOTIFY_CLIENT_ID": "eid",
        "SPOTIFY_CLIENT_SECRET": "esecret",
        "DATABASE_URL": "sqlite+aiosqlite:///x.db",
        "LASTFM_API_KEY": "0123456789abcdef0123456789abcdef",
    }
    s = load_settings(write(tmp_path, GOOD), env)
    secrets = (s.discord.token, s.spotify.client_id, s.spotify.client_secret, s.lastfm.api_key)
    assert tuple(v.get_secret_value() for v in secrets) == ("env-token", "eid", "esecret", env["LASTFM_API_KEY"])
    assert s.database_url == "sqlite+aiosqlite:///x.db"


def test_blank_environment_variables_leave_the_file_alone(tmp_path):
    s = load_settings(write(tmp_path, GOOD), {"DISCORD_TOKEN": "  ", "DATABASE_URL": ""})
    assert s.discord.token.get_secret_value() == "file-token"
    assert s.database_url == "sqlite+aiosqlite:///data/release-bot.db"


def test_a_bad_value_from_the_environment_names_the_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, GOOD), {"DATABASE_URL": "nonsense"})
    assert err.value.key == "database.url"


def test_no_other_environment_variable_is_read(tmp_path, monkeypatch):
    # What pydantic-settings would read by default: field names, nested JSON, a delimiter.
    leaks = {
        "DISCORD": '{"token": "leak", "shard_count": 9}',
        "SPOTIFY": '{"market": "SE"}',
        "DUE_SCAN": '{"interval_seconds": 7}',
        "DATABASE__POOL_SIZE": "7",
        "SPOTIFY_MARKET": "SE",
        "MARKET": "SE",
        "TOKEN": "leak",
    }
    for name, value in leaks.items():
        monkeypatch.setenv(name, value)
    for s in (load_settings(write(tmp_path, GOOD), dict(leaks)), Settings()):
        assert s.discord.token.get_secret_value() in ("file-token", "")
        assert (s.discord.shard_count, s.spotify.market) == (None, "US")
        assert (s.due_scan.interval_seconds, s.database.pool_size) == (60, 10)


def test_secrets_are_never_in_repr_str_or_logs(tmp_path, caplog):
    s = load_settings(write(tmp_path, GOOD), {})
    log = logging.getLogger("test_settings")
    with caplog.at_level(logging.DEBUG):
        log.info("settings %s", s)
        log.info("settings %r", s)
        log.info("sections %s %r", s.discord, s.spotify)
    shown = [repr(s), str(s), repr(s.discord), str(s.discord), repr(s.spotify), str(s.spotify), caplog.text]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text
    assert "file-token" not in s.model_dump_json()


def test_a_password_in_the_database_url_is_not_in_repr(tmp_path):
    s = load_settings(write(tmp_path, GOOD), {"DATABASE_URL": "postgresql+asyncpg://rb:hunter2@db:5432/rb"})
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.database)
    assert s.database_url == "postgresql+asyncpg://rb:hunter2@db:5432/rb"


@pytest.mark.parametrize(
    "text, key",
    [
        ("[spotify]\nclient_id='a'\nclient_secret='b'", "discord.token"),
        ("[discord]\ntoken='t'\n[spotify]\nclient_secret='b'", "spotify.client_id"),
        ("[discord]\ntoken='t'\n[spotify]\nclient_id='a'", "spotify.client_secret"),
        ("[discord]\ntoken='  '\n[spotify]\nclient_id='a'\nclient_secret='b'", "discord.token"),
    ],
)
def test_a_missing_secret_names_the_key_and_its_variable(tmp_path, text, key):
    error = refused(tmp_path, text)
    assert error.key == key
    env = {"discord.token": "DISCORD_TOKEN", "spotify.client_id": "SPOTIFY_CLIENT_ID"}.get(key, "SPOTIFY_CLIENT_SECRET")
    assert str(error) == f"config error: {key}: missing (or set {env})"
    s = load_settings(write(tmp_path, text), {}, require_secrets=False)  # check, migrate, config, demo
    assert s.discord.token.get_secret_value() in ("t", "")


@pytest.mark.parametrize(
    "text, key",
    [
        (GOOD + "\n[due_scan]\ninterval_seconds = 0", "due_scan.interval_seconds"),
        (GOOD.replace("[discord]", '[discord]\ngateway_url = "http://x"'), "discord.gateway_url"),
        (GOOD.replace("[discord]", '[discord]\napi_base_url = "ftp://x"'), "discord.api_base_url"),
        (GOOD.replace("[discord]", '[discord]\napi_base_url = "https://"'), "discord.api_base_url"),
        (GOOD.replace('client_id = "file-client-id"', 'client_id = "i"\napi_base_url = "x"'), "spotify.api_base_url"),
        (
            GOOD.replace('client_id = "file-client-id"', 'client_id = "i"\naccounts_base_url = "ws://x"'),
            "spotify.accounts_base_url",
        ),
        (GOOD + "\n[default_schedule]\ntimezone = 'Mars/Olympus'", "default_schedule.timezone"),
        (GOOD + "\n[default_schedule]\ntime = '25:00'", "default_schedule.time"),
        (GOOD + "\n[default_schedule]\ntime = 12", "default_schedule.time"),
        (GOOD + "\n[default_schedule]\nday = 'someday'", "default_schedule.day"),
        (GOOD + "\n[default_schedule]\nday = 'T'", "default_schedule.day"),
        (GOOD + "\n[default_schedule]\nday = 4", "default_schedule.day"),  # numbers refused on purpose
        (GOOD + "\n[database]\nurl = 'nonsense'", "database.url"),
        (GOOD + "\n[database]\nurl = 5", "database.url"),
        (GOOD + "\n[database]\npool_size = '10'", "database.pool_size"),
        (GOOD + "\n[database]\npool_size = 10.0", "database.pool_size"),
        (GOOD + "\n[database]\npool_pre_ping = 'yes'", "database.pool_pre_ping"),
        (GOOD + "\n[database]\npool_pre_ping = 1", "database.pool_pre_ping"),
        (GOOD + "\n[database]\napplication_name = ''", "database.application_name"),
        (GOOD + "\n[database]\napplication_name = 'é-bot'", "database.application_name"),
        (GOOD + '\n[database]\napplication_name = "tab\\there"', "database.application_name"),
        (GOOD + "\n[database]\napplication_name = '" + "x" * 64 + "'", "database.application_name"),
        (GOOD + "\n[database]\napplication_name = 5", "database.application_name"),
        (GOOD.replace('client_id = "file-client-id"', 'client_id = "i"\nmarket = "USA"'), "spotify.market"),
        (GOOD.replace('client_id = "file-client-id"', 'client_id = "i"\nmarket = "U1"'), "spotify.market"),
        (GOOD.replace('client_id = "file-client-id"', 'client_id = "i"\nmarket = 1'), "spotify.market"),
        (GOOD + "\n[tracking]\neconomy = 'no'", "tracking.economy"),
        (GOOD.replace('"file-token"', "5"), "discord.token"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 0"), "discord.shard_count"),
        (GOOD.replace("[discord]", '[discord]\nshard_count = "2"'), "discord.shard_count"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = true"), "discord.shard_count"),
        (GOOD.replace("[discord]", "[discord]\nshard_ids = [0]"), "discord.shard_ids"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 2\nshard_ids = [2]"), "discord.shard_ids"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 2\nshard_ids = [-1]"), "discord.shard_ids"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 2\nshard_ids = []"), "discord.shard_ids"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 2\nshard_ids = 1"), "discord.shard_ids"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 2\nshard_ids = [true]"), "discord.shard_ids"),
        (GOOD.replace("[discord]", "[discord]\nshard_count = 3\nshard_ids = [1, 1]"), "discord.shard_ids"),
        (GOOD + "\n[coordination]\nheartbeat_seconds = 40", "coordination.lease_seconds"),  # 60 ≤ 2 × 40
        (GOOD + "\n[coordination]\nheartbeat_seconds = 10\nlease_seconds = 20", "coordination.lease_seconds"),
    ],
)
def test_bad_value_names_the_key(tmp_path, text, key):
    error = refused(tmp_path, text)
    assert error.key == key
    assert str(error).startswith(f"config error: {key}: ")


# (key, lowest, highest): both accepted, one step beyond each refused.
BOUNDS = [
    ("discord.shard_count", 1, 100_000),
    ("spotify.requests_per_run", 0, 10_000_000),
    ("spotify.requests_per_day", 0, 100_000_000),
    ("spotify.max_concurrency", 1, 64),
    ("spotify.rate_limit_per_30s", 0, 100_000),
    ("tracking.economy_inactive_days", 1, 36500),
    ("tracking.economy_every", 1, 520),
    ("tracking.recheck_share", 0, 1),
    ("database.pool_size", 1, 1000),
    ("due_scan.interval_seconds", 1, 3600),
    ("coordination.heartbeat_seconds", 1, 300),
]


def with_key(dotted: str, value: object, extra: str = "") -> str:
    section, key = dotted.split(".")
    text = GOOD if section in ("discord", "spotify") else GOOD + f"\n[{section}]\n"
    line = f"{key} = {str(value).lower() if isinstance(value, bool) else value}\n{extra}"
    return text.replace(f"[{section}]\n", f"[{section}]\n{line}", 1)


@pytest.mark.parametrize("dotted, low, high", BOUNDS)
def test_every_bound_is_refused_with_the_key_and_the_range(tmp_path, dotted, low, high):
    extra = "lease_seconds = 3600\n" if dotted == "coordination.heartbeat_seconds" else ""
    for ok in (low, high):
        load_settings(write(tmp_path, with_key(dotted, ok, extra)), {})
    step = 0.5 if dotted.startswith(("tracking.recheck", "due_scan", "coordination")) else 1
    for bad in (low - step, high + step):
        error = refused(tmp_path, with_key(dotted, bad, extra))
        assert error.key == dotted
        assert str(error).startswith(f"config error: {dotted}: must be ")
        assert str(error).endswith(f"from {low} to {high}, got {bad!r}")


def test_the_share_and_lease_bounds(tmp_path):
    assert load_settings(write(tmp_path, with_key("tracking.reserve_share", 1)), {}).tracking.reserve_share == 1
    for bad in (0, 1.5, -0.1):
        error = refused(tmp_path, with_key("tracking.reserve_share", bad))
        assert (
            str(error) == f"config error: tracking.reserve_share: must be a number above 0 and at most 1, got {bad!r}"
        )
    s = load_settings(write(tmp_path, with_key("coordination.lease_seconds", 3600)), {})
    assert s.coordination.lease_seconds == 3600
    assert refused(tmp_path, with_key("coordination.lease_seconds", 3601)).key == "coordination.lease_seconds"
    error = refused(tmp_path, with_key("coordination.lease_seconds", 20))
    assert str(error) == (
        "config error: coordination.lease_seconds: must be a number of seconds above twice heartbeat_seconds (20)"
        " and at most 3600, got 20"
    )


def test_max_concurrency_message(tmp_path):
    error = refused(tmp_path, with_key("spotify.max_concurrency", 0))
    assert str(error) == "config error: spotify.max_concurrency: must be a whole number from 1 to 64, got 0"


@pytest.mark.parametrize(
    "text, key, message",
    [
        (
            GOOD.replace("[discord]", "[discord]\nshard_id = 1"),
            "discord.shard_id",
            "unknown key discord.shard_id — did you mean discord.shard_ids?",
        ),
        (
            GOOD.replace('client_id = "file-client-id"', 'client_id = "i"\nmax_concurency = 2'),
            "spotify.max_concurency",
            "unknown key spotify.max_concurency — did you mean spotify.max_concurrency?",
        ),
        (  # a key of another section
            GOOD.replace("[discord]", '[discord]\nmarket = "SE"'),
            "discord.market",
            "unknown key discord.market — did you mean spotify.market?",
        ),
        (
            GOOD + "\n[databse]\npool_size = 3",
            "databse",
            "unknown section [databse] — did you mean [database]?",
        ),
        (
            GOOD + "\n[coordination]\nwhatever = 1",
            "coordination.whatever",
            "unknown key coordination.whatever — keys of [coordination]: heartbeat_seconds, lease_seconds",
        ),
        (
            'database_url = "sqlite+aiosqlite:///x.db"\n' + GOOD,
            "database_url",
            "unknown key database_url — every key belongs in a section such as [database]",
        ),
    ],
)
def test_an_unknown_key_or_section_is_refused_with_the_closest_known_name(tmp_path, text, key, message):
    error = refused(tmp_path, text, require_secrets=False)
    assert isinstance(error, UnknownKeyError)
    assert (error.key, str(error)) == (key, f"config error: {message}")


def test_an_unknown_key_is_reported_before_a_missing_secret(tmp_path):
    error = refused(tmp_path, "[discord]\ntokne = 'x'")
    assert str(error) == "config error: unknown key discord.tokne — did you mean discord.token?"


@pytest.mark.parametrize(
    "text, message",
    [
        (
            GOOD + "\n[scheduler]\nscan_interval_seconds = 30",
            "section [scheduler] was renamed: use [due_scan] interval_seconds",
        ),
        (GOOD + "\n[schedule]\nday = 'monday'", "section [schedule] was renamed: use [default_schedule]"),
    ],
)
def test_the_renamed_sections_say_what_to_write_instead(tmp_path, text, message):
    error = refused(tmp_path, text)
    assert str(error) == f"config error: {message}"


def test_a_section_that_is_not_a_table(tmp_path):
    error = refused(tmp_path, 'tracking = "fast"\n' + GOOD)
    assert str(error) == "config error: tracking: must be a table, e.g. [tracking]"


def test_a_file_that_is_not_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[discord\ntoken = 'x'")
    with pytest.raises(ConfigError) as err:
        load_settings(path, {})
    assert err.value.key == str(path) and "not valid TOML" in str(err.value) and "\n" not in str(err.value)


def test_cli_prints_one_line_not_a_traceback(tmp_path):
    cfg = write(tmp_path, "[discord]\napi_base_url = 'ftp://nope'\n")
    proc = run_cli(tmp_path, "run", "--config", str(cfg))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "discord.token" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_refuses_an_unknown_key_with_status_2_and_the_suggestion(tmp_path):
    cfg = write(tmp_path, GOOD.replace("[discord]", "[discord]\nshard_count = 2\nshard_id = 1"))
    proc = run_cli(tmp_path, "run", "--config", str(cfg))
    assert proc.returncode == 2
    assert proc.stderr == "config error: unknown key discord.shard_id — did you mean discord.shard_ids?\n"
    assert proc.stdout == ""


def test_cli_refuses_the_old_scheduler_section_with_status_2(tmp_path):
    cfg = write(tmp_path, GOOD + "\n[scheduler]\nscan_interval_seconds = 60\n")
    proc = run_cli(tmp_path, "run", "--config", str(cfg))
    assert proc.returncode == 2
    assert proc.stderr == "config error: section [scheduler] was renamed: use [due_scan] interval_seconds\n"


def test_database_engine_options_are_read(tmp_path):
    s = load_settings(
        write(tmp_path, GOOD + "\n[database]\npool_size = 3\npool_pre_ping = false\napplication_name = 'rb-eu-1'"), {}
    )
    assert s.database.engine_options() == {"pool_size": 3, "pool_pre_ping": False, "application_name": "rb-eu-1"}


def test_settings_built_in_code_take_numbers_and_are_immutable():
    schedule = ScheduleSettings(day=4, time="9:30", timezone="utc")
    assert (schedule.day, schedule.time, schedule.timezone) == (4, "09:30", "UTC")
    s = Settings(discord=DiscordSettings(token="t"), database=DatabaseSettings(url="sqlite+aiosqlite:///x.db"))
    assert s.database_url == "sqlite+aiosqlite:///x.db" and s.discord.token.get_secret_value() == "t"
    with pytest.raises(ValueError):
        s.database.pool_size = 3  # type: ignore[misc]  # frozen: refused at run time too


def test_a_section_that_is_not_a_table_is_refused_even_with_an_override(tmp_path):
    path = write(tmp_path, 'discord = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, {"DISCORD_TOKEN": "t"}, require_secrets=False)
    assert str(err.value) == "config error: discord: must be a table, e.g. [discord]"


def test_release_day_probes_default_to_four_and_their_hours_must_ascend_within_the_day(tmp_path):
    settings = load_settings(write(tmp_path, GOOD), {})
    assert (settings.release_day.max_probes, settings.release_day.probe_hours) == (4, [0.25, 2.0, 6.0, 12.0])
    custom = load_settings(write(tmp_path, GOOD + "[release_day]\nmax_probes = 2\nprobe_hours = [1.0, 3.5]\n"), {})
    assert (custom.release_day.max_probes, custom.release_day.probe_hours) == (2, [1.0, 3.5])
    assert "release_day.probe_hours" in str(refused(tmp_path, GOOD + "[release_day]\nprobe_hours = [6.0, 2.0]\n"))
    assert "release_day.probe_hours" in str(refused(tmp_path, GOOD + "[release_day]\nprobe_hours = [24.0]\n"))
    assert "release_day.max_probes" in str(refused(tmp_path, GOOD + "[release_day]\nmax_probes = 0\n"))
