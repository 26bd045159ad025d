"""``/settings channel``, ``schedule``, ``types``, ``filters`` and ``mention`` (Manage Server)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.delivery.planner import FILTER_KEYWORDS, FILTER_NAMES, GuildFilters
from bot.services.errors import UserError
from bot.services.follows import FollowService
from bot.services.guild_settings import GuildSettingsService
from bot.services.text import ALBUM_GROUP_NAMES, DAY_NAMES
from cogs.common import guild_id_of, reply, require_manage_guild

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

REQUIRED_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, embed_links=True)
"""What the bot needs in the release channel (named in the refusal as "View Channel", "Send Messages", "Embed Links")."""
PERMISSION_NAMES = {"read_messages": "View Channel", "send_messages": "Send Messages", "embed_links": "Embed Links"}


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Settings(commands.GroupCog, group_name="settings", group_description="Where and when releases are posted"):
    """Server settings; every subcommand needs Manage Server."""

    def __init__(self, bot: ReleaseBot) -> None:
        self.bot = bot
        super().__init__()

    @property
    def guild_settings(self) -> GuildSettingsService:
        """The bot's :class:`GuildSettingsService`."""
        return self.bot.services.guild_settings

    @property
    def follows(self) -> FollowService:
        """The bot's :class:`FollowService` (followed artists for muting)."""
        return self.bot.services.follows

    @app_commands.command(name="channel", description="Choose the channel new releases are posted in.")
    @app_commands.describe(channel="A text channel the bot can post in")
    @require_manage_guild()
    async def channel(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        guild = interaction.guild
        target = guild.get_channel(channel.id) if guild is not None else None
        if guild is None or target is None or guild.me is None:
            raise UserError("I can't see that channel. Give me View Channel there, or pick another.")
        granted = target.permissions_for(guild.me)
        missing = [name for name, needed in REQUIRED_PERMISSIONS & ~granted if needed]
        if missing:
            names = ", ".join(PERMISSION_NAMES[p] for p in missing)
            raise UserError(f"I can't post in {target.mention}: I'm missing {names} there. Nothing was changed.")
        await self.guild_settings.set_channel(guild_id_of(interaction), target.id)
        await reply(interaction, f"New releases will be posted in {target.mention}.")

    @app_commands.command(name="schedule", description="Choose the weekly day and time of the automatic post.")
    @app_commands.describe(
        day="Day of the week", time="24-hour time, HH:MM", timezone="IANA time zone, e.g. Europe/Berlin"
    )
    @app_commands.choices(day=[app_commands.Choice(name=d, value=d.lower()) for d in DAY_NAMES])
    @require_manage_guild()
    async def schedule(
        self,
        interaction: discord.Interaction,
        day: app_commands.Choice[str],
        time: app_commands.Range[str, 1, 10],
        timezone: app_commands.Range[str, 1, 64] = "UTC",
    ) -> None:
        due = await self.guild_settings.set_schedule(guild_id_of(interaction), day.value, time, timezone)
        await reply(
            interaction,
            f"New releases will be posted every {day.name} at {time.strip()} ({timezone.strip()}). "
            f"Next: <t:{int(due.timestamp())}:F>.",
        )

    @app_commands.command(name="types", description="Choose which kinds of releases are posted.")
    @app_commands.describe(
        album="Post albums",
        single="Post singles and EPs",
        compilation="Post compilations",
        appears_on="Post releases the artists only appear on",
    )
    @require_manage_guild()
    async def types(
        self,
        interaction: discord.Interaction,
        album: bool | None = None,
        single: bool | None = None,
        compilation: bool | None = None,
        appears_on: bool | None = None,
    ) -> None:
        asked = {"album": album, "single": single, "compilation": compilation, "appears_on": appears_on}
        if all(v is None for v in asked.values()):
            current = await self.guild_settings.album_groups(guild_id_of(interaction))
            await reply(interaction, f"Posting: {_groups_text(current)}. Nothing was changed.")
            return
        stored = await self.guild_settings.switch_album_groups(guild_id_of(interaction), asked)
        await reply(interaction, f"Posting: {_groups_text(stored)}.")

    @app_commands.command(
        name="filters",
        description="Skip remixes, live, sped-up/slowed or instrumental versions; mute an artist's appearances.",
    )
    @app_commands.describe(
        remixes="Skip remixes",
        live="Skip live versions",
        sped_up="Skip sped-up and slowed versions",
        instrumental="Skip instrumental and karaoke versions",
        mute_appearances="A followed artist whose appearances on others' releases are not posted",
        unmute_appearances="A muted artist whose appearances are posted again",
    )
    @require_manage_guild()
    async def filters(
        self,
        interaction: discord.Interaction,
        remixes: bool | None = None,
        live: bool | None = None,
        sped_up: bool | None = None,
        instrumental: bool | None = None,
        mute_appearances: app_commands.Range[str, 1, 200] | None = None,
        unmute_appearances: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        skip = {"remix": remixes, "live": live, "sped_up": sped_up, "instrumental": instrumental}
        if all(v is None for v in skip.values()) and not mute_appearances and not unmute_appearances:
            current = await self.guild_settings.filters(guild_id_of(interaction))
            await reply(interaction, f"{await _filters_text(self.follows, current)} Nothing was changed.")
            return
        stored = await self.guild_settings.set_filters(
            guild_id_of(interaction), skip=skip, mute=mute_appearances, unmute=unmute_appearances
        )
        await reply(
            interaction,
            f"{await _filters_text(self.follows, stored)} Releases filtered out are never posted, "
            "even if the filter is turned off later.",
        )

    @filters.autocomplete("mute_appearances")
    async def mute_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        choices = await self.follows.followed_choices(guild_id_of(interaction), current)
        return [app_commands.Choice(name=name, value=artist_id) for name, artist_id in choices]

    @filters.autocomplete("unmute_appearances")
    async def unmute_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        muted = (await self.guild_settings.filters(guild_id_of(interaction))).mute_appearances
        names = await self.follows.artist_names(muted)
        needle = (current or "").strip().casefold()
        pairs = sorted(((names.get(a, a), a) for a in muted), key=lambda p: p[0].casefold())
        return [
            app_commands.Choice(name=name[:100], value=artist_id)
            for name, artist_id in pairs
            if needle in name.casefold()
        ][:25]

    @app_commands.command(name="mention", description="Mention a role in each post, or stop mentioning.")
    @app_commands.describe(role="The role to mention in new-release posts", clear="True: mention nobody")
    @require_manage_guild()
    async def mention(
        self, interaction: discord.Interaction, role: discord.Role | None = None, clear: bool | None = None
    ) -> None:
        service = self.guild_settings
        if role is not None and clear:
            raise UserError("Give a role or `clear:True`, not both. Nothing was changed.")
        if clear:
            await service.set_mention_role(guild_id_of(interaction), None)
            await reply(interaction, "Posts will mention nobody.")
            return
        if role is None:
            current = await service.mention_role(guild_id_of(interaction))
            text = f"Posts mention <@&{current}>." if current else "Posts mention nobody."
            await reply(
                interaction, f"{text} Set a role with `/settings mention role:`, or `clear:True`. Nothing was changed."
            )
            return
        if role.is_default():
            raise UserError(
                "Posts can't mention @everyone; choose (or create) a role for release news. Nothing was changed."
            )
        await service.set_mention_role(guild_id_of(interaction), role.id)
        text = f"Posts will mention {role.mention} (and only that role)."
        perms = interaction.app_permissions
        if not role.mentionable and not (perms.mention_everyone or perms.administrator):
            text += (
                " ⚠ The role is not mentionable, so Discord won't ping it: make it mentionable "
                "(Server Settings → Roles) or give me **Mention @everyone, @here and All Roles**."
            )
        await reply(interaction, text)


async def _filters_text(follows: FollowService, filters: GuildFilters) -> str:
    skipping = [FILTER_NAMES[k] for k in FILTER_KEYWORDS if k in filters.skip]
    text = f"Skipping {', '.join(skipping)}." if skipping else "No title filter: every version is posted."
    if filters.mute_appearances:
        names = await follows.artist_names(filters.mute_appearances)
        muted = ", ".join(sorted(discord.utils.escape_markdown(names.get(a, a)) for a in filters.mute_appearances))
        text += f" Appearances muted: {muted}."
    return text


def _groups_text(groups: Iterable[str]) -> str:
    return ", ".join(name for g, name in ALBUM_GROUP_NAMES.items() if g in set(groups)) or "nothing"


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Settings(bot))
