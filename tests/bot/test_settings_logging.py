"""``[logging]`` and ``[sentry]``: defaults, validation in one line naming the key, ``SENTRY_DSN``."""

from __future__ import annotations

import pytest

from bot.settings import ConfigError, load_settings


def load(tmp_path, text: str, environ: dict[str, str] | None = None):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_settings(path, environ or {}, require_secrets=False)


def test_defaults_are_text_on_stderr_and_no_error_reporting(tmp_path):
    s = load(tmp_path, "")
    assert (s.logging.format, s.logging.level, s.logging.library_level, s.logging.file) == (
        "text",
        None,
        "WARNING",
        None,
    )
    assert (s.logging.max_bytes, s.logging.backups) == (10_000_000, 5)
    assert s.sentry.dsn.get_secret_value() == "" and s.sentry.environment == "production"


def test_values_are_normalised(tmp_path):
    s = load(tmp_path, '[logging]\nformat = "JSON"\nlevel = "debug"\nfile = " /tmp/x.log "\n')
    assert (s.logging.format, s.logging.level, s.logging.file) == ("json", "DEBUG", "/tmp/x.log")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[logging]\nformat = "xml"', 'config error: logging.format: must be "text" or "json", got \'xml\''),
        (
            '[logging]\nlevel = "loud"',
            "config error: logging.level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'",
        ),
        (
            '[logging]\nlibrary_level = "TRACE"',
            "config error: logging.library_level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'TRACE'",
        ),
        (
            "[logging]\nmax_bytes = 100",
            "config error: logging.max_bytes: must be a whole number from 10000 to 10000000000, got 100",
        ),
        ("[logging]\nbackups = 0", "config error: logging.backups: must be a whole number from 1 to 1000, got 0"),
        ('[logging]\nfile = ""', "config error: logging.file: must be a file path (leave the key out for stderr only)"),
        (
            '[sentry]\nenvironment = "a/b"',
            "config error: sentry.environment: must be 1 to 64 characters without a slash or a newline, got 'a/b'",
        ),
        ('[logging]\nformt = "json"', "config error: unknown key logging.formt — did you mean logging.format?"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    assert str(error.value) == message


def test_a_bad_dsn_is_refused_without_showing_it(tmp_path):
    for dsn in ("not-a-dsn-secret", "https://o1.ingest.sentry.io/5", "ftp://k@host/1", "https://k@host/"):
        with pytest.raises(ConfigError) as error:
            load(tmp_path, "", {"SENTRY_DSN": dsn})
        assert error.value.key == "sentry.dsn"
        assert dsn not in str(error.value) and "https://KEY@HOST/PROJECT_ID" in str(error.value)


def test_sentry_dsn_from_the_environment_wins_over_the_file(tmp_path):
    s = load(
        tmp_path,
        '[sentry]\ndsn = "https://filekey@o1.ingest.sentry.io/1"\n',
        {"SENTRY_DSN": " https://envkey@o1.ingest.sentry.io/2 "},
    )
    assert s.sentry.dsn.get_secret_value() == "https://envkey@o1.ingest.sentry.io/2"
    assert "envkey" not in repr(s)
