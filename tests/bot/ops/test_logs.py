"""The log's formats, context fields, secret masking and file rotation (bot/ops/logs.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

import pytest
from pydantic import SecretStr

from bot.cli import _log_level
from bot.ops.logs import (
    MASK,
    Redactor,
    configure_logging,
    context_fields,
    installed_handlers,
    log_context,
    secrets_of,
)
from bot.settings import (
    DatabaseSettings,
    DiscordSettings,
    LastFmSettings,
    LoggingSettings,
    SentrySettings,
    Settings,
    SpotifySettings,
)

TOKEN = 'MTA1.discord-token-\u00e9"quoted\\'  # a quote, a backslash and a non-ASCII letter: JSON escapes all three
CLIENT_SECRET = "spotify-secret/with+url&chars"
SECRETS = [TOKEN, CLIENT_SECRET, "lastfm-key-123456"]

log = logging.getLogger("bot.test_logs")


def configure(tmp_path, fmt: str, **keys) -> tuple:
    path = tmp_path / "bot.log"
    configure_logging(LoggingSettings(format=fmt, file=str(path), **keys), secrets=SECRETS, level="DEBUG")
    return path


def lines(path) -> list[str]:
    for handler in installed_handlers():
        handler.flush()
    return path.read_text(encoding="utf-8").splitlines()


def test_text_lines_carry_the_context_fields_set_around_them(tmp_path):
    path = configure(tmp_path, "text")
    log.info("before")
    with log_context(run_id=7, guild_id=1234):
        log.info("inside")
        with log_context(artist_id="4Z8W4fKeB5YxbusRsdQVPb"):
            log.warning("deeper")
        log.info("back")
    log.info("after")
    text = lines(path)
    assert text[0].endswith(" INFO bot.test_logs: before")
    assert text[1].endswith(" INFO bot.test_logs [run_id=7 guild_id=1234]: inside")
    assert text[2].endswith(" WARNING bot.test_logs [run_id=7 guild_id=1234 artist_id=4Z8W4fKeB5YxbusRsdQVPb]: deeper")
    assert text[3].endswith("[run_id=7 guild_id=1234]: back")
    assert text[4].endswith(" INFO bot.test_logs: after")


def test_json_lines_parse_with_timestamp_level_logger_message_and_context(tmp_path):
    path = configure(tmp_path, "json")
    with log_context(run_id=3, shard=1):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("it failed for %s", "reasons")
    record = json.loads(lines(path)[0])
    assert list(record)[:4] == ["timestamp", "level", "logger", "message"]
    assert record["timestamp"].endswith("+00:00")
    assert (record["level"], record["logger"], record["message"]) == ("ERROR", "bot.test_logs", "it failed for reasons")
    assert (record["run_id"], record["shard"]) == (3, 1)
    assert "guild_id" not in record
    assert "RuntimeError: boom" in record["exc_info"]


async def test_tasks_started_inside_a_context_inherit_it_and_others_do_not(tmp_path):
    seen: dict[str, dict] = {}

    async def note(name: str) -> None:
        await asyncio.sleep(0)
        seen[name] = context_fields()

    with log_context(run_id=11):
        inside = asyncio.create_task(note("inside"))
        async with log_context(guild_id=5):
            await note("guild")
    outside = asyncio.create_task(note("outside"))
    await asyncio.gather(inside, outside)
    assert seen == {"inside": {"run_id": 11}, "guild": {"run_id": 11, "guild_id": 5}, "outside": {}}


def test_a_none_field_leaves_the_outer_value():
    with log_context(run_id=4, guild_id=None):
        with log_context(run_id=None, guild_id=8):
            assert context_fields() == {"run_id": 4, "guild_id": 8}
        assert context_fields() == {"run_id": 4}


def test_an_unknown_context_field_is_refused():
    with pytest.raises(TypeError, match="user"):
        log_context(user="someone")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_masked_in_messages_arguments_exceptions_and_extra_fields(tmp_path, fmt):
    path = configure(tmp_path, fmt)
    log.info("token is " + TOKEN)
    log.info("secret is %s, key %r", CLIENT_SECRET, SECRETS[2])
    log.info("a url https://x/?secret=%s", "spotify-secret%2Fwith%2Burl%26chars")
    log.info("extra field", extra={"credentials": {"token": TOKEN}})
    try:
        raise ValueError(f"refused {TOKEN} and {CLIENT_SECRET}")
    except ValueError:
        log.exception("failure")
    out = "\n".join(lines(path))
    for secret in SECRETS:
        assert secret not in out
        assert json.dumps(secret)[1:-1] not in out  # JSON-escaped spelling
    assert "spotify-secret%2Fwith%2Burl%26chars" not in out
    assert out.count(MASK) >= 6  # the extra field is shown (and masked) in JSON only
    if fmt == "json":
        records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert records[0]["message"] == f"token is {MASK}"
        assert records[1]["message"] == f"secret is {MASK}, key '{MASK}'"
        assert records[3]["credentials"] == {"token": MASK}


def test_credentials_libraries_log_are_masked_without_being_configured(tmp_path):
    path = configure(tmp_path, "text")
    discord_http = logging.getLogger("discord.http")
    discord_http.warning("POST http://d/api/v10/interactions/12/aW50ZXJhY3Rpb246abc_-x/callback?with_response=true")
    discord_http.warning("PATCH http://d/api/v10/webhooks/34/aW50ZXJhY3Rpb246def/messages/@original")
    logging.getLogger("discord.gateway").warning("event {'id': '5', 'token': 'aW50ZXJhY3Rpb246ghi', 'type': 2}")
    log.warning('token response {"access_token": "BQD-access.token", "token_type": "Bearer"}')
    log.warning("headers {'Authorization': 'Bot MTk5.unconfigured-bot-token.xyz'}")
    out = "\n".join(lines(path))
    for credential in ("aW50ZXJhY3Rpb246", "BQD-access.token", "MTk5.unconfigured-bot-token.xyz"):
        assert credential not in out
    assert "/interactions/12/***/callback?with_response=true" in out
    assert "/webhooks/34/***/messages/@original" in out
    assert "'token': '***', 'type': 2" in out and '"access_token": "***", "token_type": "Bearer"' in out
    assert "'Authorization': 'Bot ***'" in out


def test_a_short_secret_is_masked_where_it_stands_alone_not_inside_words():
    redactor = Redactor(["a", "pw12"])
    assert (
        redactor("a release, and a url postgresql://bot:pw12@db/a")
        == "*** release, and *** url postgresql://bot:***@db/***"
    )
    assert redactor("rapw123") == "rapw123"


def test_secrets_also_vanish_from_stderr_and_the_record_passed_on(tmp_path, capsys):
    configure(tmp_path, "text")
    captured: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    keep = Keep()
    log.addHandler(keep)  # runs before the root's handlers: sees the record as logged
    try:
        log.warning("token %s", TOKEN)
    finally:
        log.removeHandler(keep)
    err = capsys.readouterr().err
    assert TOKEN not in err and f"token {MASK}" in err
    # The root's handlers masked the record itself (Sentry's breadcrumbs read it after them).
    assert captured[0].getMessage() == f"token {MASK}"


def test_the_file_is_rotated_by_size_keeping_the_configured_backups(tmp_path):
    path = configure(tmp_path, "text", max_bytes=10_000, backups=2)
    for i in range(1000):  # ~80 kB: the file rolls over several times
        log.info("line %04d %s", i, "x" * 40)
    lines(path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["bot.log", "bot.log.1", "bot.log.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 10_000
    assert (tmp_path / "bot.log").read_text().splitlines()[-1].endswith("line 0999 " + "x" * 40)
    oldest = (tmp_path / "bot.log.2").read_text().splitlines()
    assert oldest[0] < lines(path)[0]  # .2 is older than the current file (same date, earlier time or line)


def test_library_records_use_the_same_handlers_and_format_at_their_own_level(tmp_path):
    path = configure(tmp_path, "json", library_level="INFO")
    logging.getLogger("discord.gateway").debug("not shown: below library_level")
    logging.getLogger("discord.gateway").info("Shard ID 0 has connected")
    logging.getLogger("sqlalchemy.engine.Engine").info("SELECT 1")
    records = [json.loads(line) for line in lines(path)]
    assert [(r["logger"], r["message"]) for r in records] == [
        ("discord.gateway", "Shard ID 0 has connected"),
        ("sqlalchemy.engine.Engine", "SELECT 1"),
    ]


def test_configuring_again_replaces_the_handlers_it_installed(tmp_path):
    configure(tmp_path, "text")
    root = logging.getLogger()
    before = len(root.handlers)
    configure_logging(LoggingSettings(), level="WARNING")
    assert len(root.handlers) == before - 1  # the file handler is gone, one stderr handler stays
    assert root.level == logging.WARNING


def test_an_unwritable_log_file_is_a_config_error_naming_the_key(tmp_path):
    from bot.settings import ConfigError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"^config error: logging\.file: cannot be opened"):
        configure_logging(LoggingSettings(file=str(blocker / "bot.log")), level="INFO")


def test_secrets_of_settings_are_every_secret_that_is_set():
    settings = Settings(
        discord=DiscordSettings(token=SecretStr("tok")),
        spotify=SpotifySettings(client_id=SecretStr("cid"), client_secret=SecretStr("csec")),
        lastfm=LastFmSettings(api_key=SecretStr("lfm")),
        database=DatabaseSettings(url="postgresql+asyncpg://rb:p%40ss@db:5432/rb"),
        sentry=SentrySettings(dsn=SecretStr("https://sentrykey@o1.ingest.sentry.io/42")),
    )
    assert set(secrets_of(settings)) == {
        "tok",
        "cid",
        "csec",
        "lfm",
        "https://sentrykey@o1.ingest.sentry.io/42",
        "sentrykey",
        "p%40ss",
        "p@ss",
    }
    assert secrets_of(Settings()) == []


@pytest.mark.parametrize(
    ("given", "configured", "command", "expected"),
    [
        ("DEBUG", "ERROR", "run", "DEBUG"),  # --log-level wins
        (None, "ERROR", "run", "ERROR"),  # then [logging] level
        (None, None, "run", "INFO"),  # then the command's default
        (None, None, "check", "WARNING"),
    ],
)
def test_the_level_is_the_flag_then_the_config_then_the_commands_default(given, configured, command, expected):
    args = argparse.Namespace(log_level=given, command=command)
    assert _log_level(args, Settings(logging=LoggingSettings(level=configured))) == expected
