"""Command line: ``release-bot run | check | migrate | config | demo | signal``.

* ``run`` — the Discord bot (``--config``, default ``config.toml``).
* ``check`` — one tracking pass without Discord over the given artists (or every
  followed artist), on the same database as the bot.
* ``migrate`` — migrate the database to the newest schema and exit (deploys that migrate once
  before starting the bot; ``run`` and ``check`` migrate at start-up anyway).
* ``config`` — the configuration in effect as TOML, secrets masked; ``--reference`` and
  ``--example`` print the generated ``docs/configuration.md`` and ``config.example.toml``.
* ``demo`` — the real bot against the Spotify emulator and the Discord fake, offline.
* ``signal`` — how the free second signal (MusicBrainz, ListenBrainz) is doing: artists mapped,
  release groups kept, matched, missed (docs/musicdata.md).

Configuration problems (``bot.settings.ConfigError``: an unknown or renamed key, a bad value)
print one line naming the key and exit with status 2.

Logging (docs/operations.md, "Logs"): the commands that read a config (``run``, ``check``,
``migrate``, ``signal``) log as its ``[logging]`` section says, secrets masked; the level is
``--log-level`` when given, else ``[logging] level``, else INFO for ``run`` and WARNING for the
others. ``run`` also starts error reporting when ``[sentry] dsn`` is set (:mod:`bot.ops.errors`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from bot.ops.logs import configure_logging, secrets_of
from bot.settings import ConfigError, LoggingSettings, Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="release-bot", description="Posts new Spotify releases to Discord servers.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the Discord bot")
    run.add_argument("--config", default=None, help=CONFIG_HELP)
    run.add_argument("--log-level", default=None, help=LOG_LEVEL_HELP)
    check = sub.add_parser("check", help="one tracking pass without Discord")
    check.add_argument("--config", default=None, help=CONFIG_HELP)
    check.add_argument(
        "--artist",
        action="append",
        default=[],
        metavar="ID",
        help="Spotify artist id, URL or URI (repeatable); default: every followed artist",
    )
    check.add_argument("--json", action="store_true", help="one JSON object per new release")
    check.add_argument(
        "--profile",
        action="store_true",
        help="print the run's metrics: requests by endpoint, lower bound L, pages skipped, 429s, seconds per phase",
    )
    check.add_argument("--log-level", default=None, help=LOG_LEVEL_HELP)
    migrate = sub.add_parser("migrate", help="migrate the database to the newest schema, then exit")
    migrate.add_argument("--config", default=None, help=CONFIG_HELP)
    migrate.add_argument("--log-level", default=None, help=LOG_LEVEL_HELP)
    config = sub.add_parser("config", help="print the configuration in effect (secrets masked), or a generated file")
    config.add_argument("--config", default=None, help=CONFIG_HELP)
    generated = config.add_mutually_exclusive_group()
    generated.add_argument("--reference", action="store_true", help="print docs/configuration.md, generated")
    generated.add_argument("--example", action="store_true", help="print config.example.toml, generated")
    config.add_argument("--log-level", default=None, help=LOG_LEVEL_HELP)
    demo = sub.add_parser("demo", help="offline demo against the Spotify emulator and the Discord fake")
    demo.add_argument("--weeks", type=int, default=5, help="simulated weeks after the baseline (1-10)")
    demo.add_argument("--log-level", default=None, help=LOG_LEVEL_HELP)
    signal = sub.add_parser("signal", help="the free second signal's counts: artists mapped, releases matched, missed")
    signal.add_argument("--config", default=None, help=CONFIG_HELP)
    signal.add_argument("--json", action="store_true", help="the counts as one JSON object")
    signal.add_argument("--log-level", default=None, help=LOG_LEVEL_HELP)
    return parser


LOG_LEVEL_HELP = "lowest level logged (DEBUG, INFO, WARNING, ERROR, CRITICAL); wins over [logging] level"
DEFAULT_LOG_LEVELS = {"run": "INFO"}
"""The level of a command when neither ``--log-level`` nor ``[logging] level`` says one; WARNING for the others."""
CONFIG_HELP = "TOML config file (default: config.toml when it exists; the environment alone otherwise)"
DEFAULT_CONFIG = "config.toml"


def config_path(given: str | None) -> str:
    """The config file to read: ``given`` (``--config``), which must exist, else ``config.toml``
    (which may be absent: the environment and the defaults then carry everything).

    Raises :class:`ConfigError` for a ``--config`` file that does not exist (a typo in a path
    must not start the bot on defaults).
    """
    if given is None:
        return DEFAULT_CONFIG
    if not Path(given).is_file():
        raise ConfigError("--config", f"no such file: {given}")
    return given


def _stop_before_start(signum: int, frame: object) -> None:
    """SIGTERM or SIGINT while ``run`` still loads (nothing held yet): leave at once with status 0."""
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``release-bot`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        # Before the settings are read (and for the commands without any): text on stderr.
        configure_logging(LoggingSettings(), level=_log_level(args, None))
    except ValueError as exc:
        print(f"release-bot: --log-level: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "run":
            for sig in (signal.SIGTERM, signal.SIGINT):  # until the bot's own graceful stop is installed
                signal.signal(sig, _stop_before_start)
            settings = load_settings(config_path(args.config), os.environ)
            _configure_logging(args, settings)
            from bot.ops.errors import init_sentry

            init_sentry(settings)
            from bot.discord_app.run import run_bot

            run_bot(settings)
            return 0
        if args.command == "check":
            settings = load_settings(config_path(args.config), os.environ, require_secrets=False)
            _configure_logging(args, settings)
            spotify = settings.spotify
            if not spotify.client_id.get_secret_value() or not spotify.client_secret.get_secret_value():
                raise ConfigError("spotify.client_id", "missing (or set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET)")
            from bot.cli.check import run_check

            return asyncio.run(run_check(settings, args.artist, as_json=args.json, profile=args.profile))
        if args.command == "migrate":
            settings = load_settings(config_path(args.config), os.environ, require_secrets=False)
            _configure_logging(args, settings)
            from bot.cli.migrate import run_migrate

            return asyncio.run(run_migrate(settings))
        if args.command == "config":
            from bot.cli.config import run_config

            return run_config(config_path(args.config), os.environ, reference=args.reference, example=args.example)
        if args.command == "demo":
            if not 1 <= args.weeks <= 10:
                print("demo: --weeks must be from 1 to 10", file=sys.stderr)
                return 2
            from bot.cli.demo import run_demo

            return asyncio.run(run_demo(weeks=args.weeks))
        if args.command == "signal":
            settings = load_settings(config_path(args.config), os.environ, require_secrets=False)
            _configure_logging(args, settings)
            from bot.cli.signal import run_signal

            return asyncio.run(run_signal(settings, as_json=args.json))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:  # logged in the configured format, secrets masked (not a bare traceback)
        logging.getLogger("bot.cli").critical("release-bot %s stopped by an error", args.command, exc_info=True)
        return 1
    return 1


def _log_level(args: argparse.Namespace, settings: Settings | None) -> str:
    """The level of this command: ``--log-level`` when given, else ``[logging] level`` when set, else
    the command's default (:data:`DEFAULT_LOG_LEVELS`)."""
    if args.log_level is not None:
        return str(args.log_level)
    if settings is not None and settings.logging.level is not None:
        return settings.logging.level
    return DEFAULT_LOG_LEVELS.get(args.command, "WARNING")


def _configure_logging(args: argparse.Namespace, settings: Settings) -> None:
    """Log as ``[logging]`` says (format, file, level — see :func:`_log_level`), masking every secret of ``settings``."""
    configure_logging(settings.logging, secrets=secrets_of(settings), level=_log_level(args, settings))
