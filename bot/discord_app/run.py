"""``release-bot run``: the Discord bot in the foreground until it is stopped.

SIGTERM (``docker stop``, systemd) and SIGINT (Ctrl-C) stop it gracefully: an asyncio signal handler
(``loop.add_signal_handler``, Python's "Event Loop" > "Unix signals") schedules
:meth:`ReleaseBot.close`, which stops the runner (a run in progress stops at its next step within
:data:`bot.discord_app.client.SHUTDOWN_GRACE` seconds: a post being sent finishes and is confirmed),
the background jobs, the gateway, then gives this process's leases and its ``processes`` row up, so
another process takes the due work over at once. The process then exits with status 0, within
:data:`STOP_BUDGET` seconds of the signal (docs/operations.md, "Stopping").
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import discord

from bot.discord_app.client import ReleaseBot
from bot.settings import ConfigError, Settings

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: seconds from SIGTERM/SIGINT to the exit that the graceful stop is built to fit in (Docker's
#: ``docker stop`` sends SIGKILL after 10 s by default)
STOP_BUDGET = 10.0


def run_bot(settings: Settings) -> None:
    """Run :class:`ReleaseBot` with ``settings`` until SIGTERM or SIGINT stops it gracefully (then returns).

    Raises :class:`ConfigError` for ``discord.token`` when Discord refuses the token (HTTP 401 at login).
    """
    asyncio.run(serve(settings))


async def serve(settings: Settings, bot: ReleaseBot | None = None) -> None:
    """Start the bot (``bot``, default a new :class:`ReleaseBot` on ``settings``) and run it until a stop
    signal, or until it closes; the signal handlers are removed again before returning.

    The first SIGTERM or SIGINT schedules :meth:`ReleaseBot.close` and is logged with the signal's
    name; a second one while stopping is only logged (the stop is already bounded). Raises
    :class:`ConfigError` for a refused token.
    """
    bot = bot or ReleaseBot(settings)
    loop = asyncio.get_running_loop()
    closing: list[asyncio.Task[None]] = []
    signalled: list[float] = []

    def on_signal(sig: signal.Signals) -> None:
        if closing:
            log.warning("received %s while stopping; the stop is already under way", sig.name)
            return
        signalled.append(time.monotonic())
        log.info("received %s: stopping gracefully", sig.name)
        closing.append(loop.create_task(bot.close(), name="release-bot-stop"))

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        async with bot:
            try:
                await bot.start(settings.discord.token.get_secret_value())
            except discord.LoginFailure:
                raise ConfigError("discord.token", "Discord refused the token (check DISCORD_TOKEN)") from None
            except Exception as exc:
                if not closing:
                    raise
                # A stop during start-up (settling, command sync) closes what start-up was using.
                log.info("start-up was cut short by the stop (%s: %s)", type(exc).__name__, exc)
            finally:
                if closing:  # ``start`` returns once the gateway is closed: let the rest of the stop finish
                    await closing[0]
                    await bot.finish_close()  # a stop during start-up: what start-up built after it
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    if signalled:
        log.info("stopped gracefully in %.1f s", time.monotonic() - signalled[0])
