"""``release-bot run``: the Discord bot in the foreground until it is stopped."""

from __future__ import annotations

import discord

from bot.discord_app.client import ReleaseBot
from bot.settings import ConfigError, Settings


def run_bot(settings: Settings) -> None:
    """Run :class:`ReleaseBot` with ``settings`` until it is stopped (Ctrl-C raises ``KeyboardInterrupt``).

    Raises :class:`ConfigError` for ``discord.token`` when Discord refuses the token (HTTP 401 at login).
    """
    bot = ReleaseBot(settings)
    try:
        bot.run(settings.discord.token.get_secret_value(), log_handler=None)
    except discord.LoginFailure:
        raise ConfigError("discord.token", "Discord refused the token (check DISCORD_TOKEN)") from None
