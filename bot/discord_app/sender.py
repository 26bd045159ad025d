"""The Discord edge of delivery: :class:`DiscordSender` posts a release message and finds posted ones;
:func:`point_discord_at` sends discord.py to a Discord-compatible server (the test fake)."""

from __future__ import annotations

from typing import Any

import discord
import yarl

from bot.delivery import ChannelUnavailable
from bot.delivery.components import PostButtons
from bot.delivery.render import AllowedMentions
from bot.discord_app.post_buttons import post_view


def point_discord_at(api_base_url: str, gateway_url: str) -> None:
    """Send every discord.py REST call to ``api_base_url`` and connect the gateway to ``gateway_url``.

    discord.py builds every route from ``discord.http.Route.BASE``; a plain ``Client``, and an
    ``AutoShardedClient`` given a ``shard_count`` (as ``ReleaseBot`` always is), connect to
    ``DiscordWebSocket.DEFAULT_GATEWAY`` without asking ``GET /gateway/bot``. Both are class
    attributes, so this is process-wide.
    """
    discord.http.Route.BASE = api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def allowed_mentions_of(spec: AllowedMentions | None) -> discord.AllowedMentions:
    """discord.py's ``AllowedMentions`` for Discord's Allowed Mentions object ``spec``: only the roles it
    lists may be pinged (never everyone, users or the replied user); None or no roles: nobody."""
    roles = (spec or {}).get("roles") or []
    if not roles:
        return discord.AllowedMentions.none()
    return discord.AllowedMentions(
        everyone=False, users=False, replied_user=False, roles=[discord.Object(int(r)) for r in roles]
    )


class DiscordSender:
    """Posts rendered embeds to a channel as the bot's own message (the ``Sender`` of ``bot.delivery``).

    Raises :class:`ChannelUnavailable` when the channel is gone (404) or the bot may
    not post there (403); other ``discord.HTTPException`` s propagate as transient.
    Nobody is mentioned (the client's ``allowed_mentions``, ``none()`` on ``ReleaseBot``) unless a
    role mention is given (``content`` with ``allowed_mentions``).
    """

    GONE = "the chosen channel no longer exists"
    FORBIDDEN = (
        "the bot is not allowed to post in the chosen channel (it needs View Channel, Send Messages and Embed Links)"
    )

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def send(
        self,
        channel_id: int,
        embeds: list[dict[str, Any]],
        *,
        nonce: str,
        buttons: PostButtons | None = None,
        content: str | None = None,
        allowed_mentions: AllowedMentions | None = None,
    ) -> int:
        """Send one message with ``embeds`` (≤ 10 embed dicts, ≤ 6,000 characters); returns its message id.

        ``nonce`` makes discord.py send ``enforce_nonce: true``. ``buttons`` are sent as a stopped
        ``discord.ui.View`` of the post-button dynamic items (:func:`post_view`); their interactions
        are answered by ``custom_id``. ``content`` with ``allowed_mentions`` (Discord's Allowed
        Mentions object): only the roles listed there may be pinged; without it nobody is.
        """
        kwargs: dict[str, Any] = {}  # mentions: the bot's own AllowedMentions.none() unless a role is given
        if buttons:
            kwargs["view"] = post_view(buttons)
        if content:
            kwargs["content"] = content
            kwargs["allowed_mentions"] = allowed_mentions_of(allowed_mentions)
        channel = self.client.get_channel(channel_id)
        try:
            if channel is None:
                channel = await self.client.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise ChannelUnavailable("the chosen channel is not a text channel")
            message = await channel.send(
                embeds=[discord.Embed.from_dict(e) for e in embeds],
                nonce=nonce,
                **kwargs,
            )
        except discord.NotFound:
            raise ChannelUnavailable(self.GONE, status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable(self.FORBIDDEN, status=403) from None
        return message.id

    async def find_posted(self, channel_id: int, album_urls: list[str], *, limit: int = 100) -> dict[str, int]:
        """Among the bot's own ``limit`` latest messages in the channel (``GET /channels/{id}/messages``),
        the id of the (newest) message with an embed whose ``url`` is each of ``album_urls``.

        Raises :class:`ChannelUnavailable` (404 gone, 403 not readable); other errors propagate.
        """
        wanted = set(album_urls)
        found: dict[str, int] = {}
        me = self.client.user.id if self.client.user is not None else None
        channel = self.client.get_partial_messageable(channel_id)
        try:
            async for message in channel.history(limit=limit):
                if me is not None and message.author.id != me:
                    continue
                for embed in message.embeds:
                    if embed.url in wanted and embed.url not in found:
                        found[embed.url] = message.id
                if len(found) == len(wanted):
                    break
        except discord.NotFound:
            raise ChannelUnavailable(self.GONE, status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable("the bot cannot read the chosen channel's messages", status=403) from None
        return found
