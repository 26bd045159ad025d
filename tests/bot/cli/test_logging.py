"""The command line logs as ``[logging]`` says: a command that fails logs one masked CRITICAL record
in the configured format; a configuration error stays one line."""

from __future__ import annotations

import json

from bot.cli import main

PASSWORD = "pw-never-shown-0123"


def test_a_failing_command_logs_one_critical_json_record_without_the_password(tmp_path, capsys):
    config = tmp_path / "config.toml"
    log_file = tmp_path / "logs" / "bot.log"
    # Port 1 on loopback: nothing listens, so opening the store fails with the driver's error.
    config.write_text(
        f'[database]\nurl = "postgresql+asyncpg://bot:{PASSWORD}@127.0.0.1:1/bot"\n'
        f'[logging]\nformat = "json"\nfile = "{log_file}"\n'
    )
    assert main(["signal", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    records = [json.loads(line) for line in err.splitlines()]
    assert [(r["level"], r["logger"], r["message"]) for r in records][-1] == (
        "CRITICAL",
        "bot.cli",
        "release-bot signal stopped by an error",
    )
    assert "ConnectionRefusedError" in records[-1]["exc_info"]
    assert PASSWORD not in err and PASSWORD not in log_file.read_text()


def test_a_bad_logging_key_is_one_line(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text('[logging]\nformat = "xml"\n')
    assert main(["migrate", "--config", str(config)]) == 2
    assert capsys.readouterr().err == 'config error: logging.format: must be "text" or "json", got \'xml\'\n'


def test_an_unknown_log_level_flag_is_refused(capsys):
    assert main(["migrate", "--log-level", "LOUD"]) == 2
    assert "--log-level" in capsys.readouterr().err
