"""``/settings channel``, ``route``, ``publish``, ``schedule``, ``types``, ``filters``, ``mention`` and
``upcoming`` (Manage Server, checked in code).

Where releases go is chosen with two commands of the same shape as ``/settings mention`` (options,
"clear:True" to remove, no option to show): ``/settings channel`` (the default channel) and
``/settings route type:|artist: channel:|clear:True`` (one release type or one followed artist to
another channel). A channel given to either is looked up in the interaction's own guild and checked
by :func:`destination_channel` (one of this server's text, announcement or forum channels, where the
bot may post), so another server's channel — typed by hand or sent through the API — is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.delivery.planner import (
    FILTER_KEYWORDS,
    FILTER_NAMES,
    MAX_KEYWORD_LENGTH,
    MAX_PATTERN_LENGTH,
    GuildFilters,
)
from bot.delivery.types import RELEASE_TYPES
from bot.services.errors import UserError
from bot.services.follows import FollowService
from bot.services.guild_settings import Destinations, GuildSettingsService
from bot.services.text import DAY_NAMES, RELEASE_TYPE_NAMES, RELEASE_TYPE_PLURALS
from cogs.common import guild_id_of, reply, require_manage_guild

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

TEXT_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, embed_links=True)
"""What the bot needs in a text or announcement channel it posts in."""
FORUM_PERMISSIONS = discord.Permissions(
    view_channel=True, send_messages=True, send_messages_in_threads=True, embed_links=True
)
"""What the bot needs in a forum channel: a post is a thread whose starter message carries the embeds."""
PERMISSION_NAMES = {
    "read_messages": "View Channel",
    "send_messages": "Send Messages",
    "send_messages_in_threads": "Send Messages in Threads",
    "embed_links": "Embed Links",
}
FORUM_PERMISSION_NAMES = {**PERMISSION_NAMES, "send_messages": "Create Posts"}
"""Discord shows Send Messages as "Create Posts" in a forum's permissions."""
CANNOT_SEE_TEXT = (
    "I can't see that channel in this server. Pick one of this server's text, announcement or forum "
    "channels that I can view. Nothing was changed."
)
LIST_LIMIT = 15
"""Entries of one block list shown in a reply (the rest are counted)."""

Destination = discord.TextChannel | discord.ForumChannel


def release_day_text(on: bool) -> str:
    """What ``/settings schedule`` says of release-day posting (``guilds.release_day``)."""
    if on:
        return (
            "Release day: on. A release announced for today (MusicBrainz) is looked for on Spotify a few "
            "times that day and posted as soon as it is listed; the weekly post carries the rest."
        )
    return "Release day: off. Everything is posted in the weekly post."


class DestinationOption(app_commands.Transformer):
    """A channel option offering the channels releases can be posted in (text, announcement, forum),
    passed on as Discord sent it (its ``id``): :func:`destination_channel` looks it up in the
    interaction's own guild, so a channel the bot cannot see there is answered with the reason
    instead of a failed conversion."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return [discord.ChannelType.text, discord.ChannelType.news, discord.ChannelType.forum]

    async def transform(self, interaction: discord.Interaction, value: Any) -> discord.abc.Snowflake:
        return value


ChannelOption = app_commands.Transform[discord.abc.Snowflake, DestinationOption]


def destination_channel(interaction: discord.Interaction, option: discord.abc.Snowflake) -> Destination:
    """The channel ``option`` names, as a channel of the interaction's guild the bot can post releases in.

    Raises :class:`UserError` (nothing is changed) when it is not one of this guild's channels the bot
    can see (another server's channel, typed by hand or sent through the API, included), a media
    channel, or a channel where the bot lacks View Channel, Send Messages and Embed Links (in a
    forum: View Channel, Create Posts, Send Messages in Threads and Embed Links), naming what is missing.
    """
    guild = interaction.guild
    target = guild.get_channel(option.id) if guild is not None else None
    if guild is None or guild.me is None or not isinstance(target, discord.TextChannel | discord.ForumChannel):
        raise UserError(CANNOT_SEE_TEXT)
    if isinstance(target, discord.ForumChannel) and target.is_media():
        raise UserError(
            f"{target.mention} is a media channel, where every post needs a picture; pick a text, announcement "
            "or forum channel. Nothing was changed."
        )
    forum = isinstance(target, discord.ForumChannel)
    needed, names = (FORUM_PERMISSIONS, FORUM_PERMISSION_NAMES) if forum else (TEXT_PERMISSIONS, PERMISSION_NAMES)
    missing = [names[p] for p, wanted in needed & ~target.permissions_for(guild.me) if wanted]
    if missing:
        raise UserError(
            f"I can't post in {target.mention}: I'm missing {', '.join(missing)} there. Nothing was changed."
        )
    return target


def is_announcement(interaction: discord.Interaction, channel_id: int) -> bool:
    """True when ``channel_id`` is an announcement channel of the interaction's guild."""
    channel = interaction.guild.get_channel(channel_id) if interaction.guild is not None else None
    return isinstance(channel, discord.TextChannel) and channel.is_news()


def route_lines(destinations: Destinations) -> list[str]:
    """One line per route, type routes first (in :data:`RELEASE_TYPES` order), then artist routes by name:
    ``"EPs → <#2>"``, ``"Nova Lights → <#3>"``."""
    routes = destinations.routes
    lines = [f"{RELEASE_TYPE_NAMES[t]} → <#{routes.by_type[t]}>" for t in RELEASE_TYPES if t in routes.by_type]
    lines += [
        f"{discord.utils.escape_markdown(destinations.artist_name(a))} → <#{routes.by_artist[a]}>"
        for a in sorted(routes.by_artist, key=lambda a: destinations.artist_name(a).casefold())
    ]
    return lines


def routes_text(destinations: Destinations) -> str:
    """The default channel and every route, e.g. ``"Default: <#1>. Routes: EPs → <#2> · Nova → <#3>."``."""
    default = f"<#{destinations.channel_id}>" if destinations.channel_id else "none set (`/settings channel`)"
    lines = route_lines(destinations)
    return f"Default: {default}. " + (f"Routes: {' · '.join(lines)}." if lines else "No routes.")


def publish_text(interaction: discord.Interaction, destinations: Destinations) -> str:
    """Whether posts are published, and which of the guild's destinations are announcement channels
    (only posts there are published)."""
    channels = destinations.channel_ids()
    news = [c for c in channels if is_announcement(interaction, c)]
    others = [c for c in channels if c not in news]
    if not destinations.publish:
        return "Posts are not published (crossposted)."
    if not channels:
        return "Posts will be published once they go to an announcement channel; no channel is set yet."
    if not news:
        return (
            f"Posts will be published once they go to an announcement channel; none of {_mentions(channels)} is "
            "one (a channel's settings → Announcement Channel), so nothing is published for now."
        )
    text = f"Posts in {_mentions(news)} are published (crossposted) to the servers following them"
    if others:
        text += f"; {_mentions(others)} {'is not an announcement channel' if len(others) == 1 else 'are not announcement channels'}, so posts there are only posted"
    return text + ". Discord allows 10 publishes per channel per hour; past that they wait."


def upcoming_text(enabled: bool) -> str:
    """What ``/settings upcoming`` says of the setting."""
    if enabled:
        return (
            "Releases MusicBrainz announces ahead for followed artists will be posted (once each, where their "
            "release would go; a new date or a cancellation edits that post), and the release's own post will "
            "reply to it when it is out. `/upcoming` lists them."
        )
    return "Announced releases are not posted. `/upcoming` still lists them."


def _mentions(channel_ids: Iterable[int]) -> str:
    return ", ".join(f"<#{c}>" for c in channel_ids)


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
        """The bot's :class:`FollowService` (followed artists for muting and routing)."""
        return self.bot.services.follows

    @app_commands.command(name="channel", description="Choose the channel new releases are posted in.")
    @app_commands.describe(channel="A text, announcement or forum channel the bot can post in")
    @require_manage_guild()
    async def channel(self, interaction: discord.Interaction, channel: ChannelOption) -> None:
        target = destination_channel(interaction, channel)
        await self.guild_settings.set_channel(guild_id_of(interaction), target.id)
        await reply(interaction, f"New releases will be posted in {target.mention}.")

    @app_commands.command(
        name="route", description="Send a release type or a followed artist's releases to another channel."
    )
    @app_commands.rename(release_type="type")
    @app_commands.describe(
        release_type="The release type to send elsewhere",
        artist="A followed artist whose releases to send elsewhere (wins over a type's route)",
        channel="Where they go: a text, announcement or forum channel the bot can post in",
        clear="True: remove that route (they go to the default channel again)",
    )
    @app_commands.choices(
        release_type=[app_commands.Choice(name=RELEASE_TYPE_NAMES[t], value=t) for t in RELEASE_TYPES]
    )
    @require_manage_guild()
    async def route(
        self,
        interaction: discord.Interaction,
        release_type: app_commands.Choice[str] | None = None,
        artist: app_commands.Range[str, 1, 200] | None = None,
        channel: ChannelOption | None = None,
        clear: bool | None = None,
    ) -> None:
        guild_id = guild_id_of(interaction)
        service = self.guild_settings
        if release_type is not None and artist:
            raise UserError("Route a `type:` or an `artist:`, one at a time. Nothing was changed.")
        if channel is not None and clear:
            raise UserError("Give a `channel:` or `clear:True`, not both. Nothing was changed.")
        if release_type is None and not artist:
            if channel is not None or clear:
                raise UserError("Say which releases: `type:` or `artist:`. Nothing was changed.")
            await reply(interaction, f"{routes_text(await service.destinations(guild_id))} Nothing was changed.")
            return
        if channel is not None:
            target = destination_channel(interaction, channel)
            if release_type is not None:
                await reply(interaction, await self._set_type_route(guild_id, release_type.value, target))
            else:
                _id, name = await service.set_artist_route(guild_id, artist or "", target.id)
                await reply(
                    interaction,
                    f"New releases of **{discord.utils.escape_markdown(name)}** will be posted in "
                    f"{target.mention} (whatever their type).",
                )
            return
        if clear:
            await reply(interaction, await self._clear_route(guild_id, release_type, artist or ""))
            return
        await reply(
            interaction,
            f"{routes_text(await service.destinations(guild_id))} Give a `channel:` to route them, or "
            "`clear:True`. Nothing was changed.",
        )

    async def _set_type_route(self, guild_id: int, release_type: str, target: Destination) -> str:
        chosen = await self.guild_settings.set_type_route(guild_id, release_type, target.id)
        plural = RELEASE_TYPE_PLURALS[chosen]
        text = f"{plural} will be posted in {target.mention}; an artist's route still wins over it."
        if chosen not in await self.guild_settings.album_groups(guild_id):
            text += f" ⚠ They are not posted at all now: turn them on with `/settings types {chosen}:True`."
        return text

    async def _clear_route(self, guild_id: int, release_type: app_commands.Choice[str] | None, artist: str) -> str:
        if release_type is not None:
            chosen, removed = await self.guild_settings.clear_type_route(guild_id, release_type.value)
            if not removed:
                return f"{RELEASE_TYPE_PLURALS[chosen]} had no route; nothing was changed."
            return f"{RELEASE_TYPE_PLURALS[chosen]} will be posted in the default channel again."
        _id, name, removed = await self.guild_settings.clear_artist_route(guild_id, artist)
        shown = f"**{discord.utils.escape_markdown(name)}**"
        if not removed:
            return f"{shown} had no route; nothing was changed."
        return f"New releases of {shown} will go where their type goes again (a type's route or the default channel)."

    @route.autocomplete("artist")
    async def route_artist_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        choices = await self.follows.followed_choices(guild_id_of(interaction), current)
        return [app_commands.Choice(name=name, value=artist_id) for name, artist_id in choices]

    @app_commands.command(name="publish", description="Publish (crosspost) posts made in announcement channels.")
    @app_commands.describe(enabled="True: publish posts in announcement channels; False: stop")
    @require_manage_guild()
    async def publish(self, interaction: discord.Interaction, enabled: bool | None = None) -> None:
        guild_id = guild_id_of(interaction)
        if enabled is None:
            destinations = await self.guild_settings.destinations(guild_id)
            await reply(
                interaction,
                f"{publish_text(interaction, destinations)} Turn it "
                f"{'off with `enabled:False`' if destinations.publish else 'on with `enabled:True`'}. Nothing was changed.",
            )
            return
        destinations = await self.guild_settings.set_publish(guild_id, enabled)
        await reply(interaction, publish_text(interaction, destinations))

    @app_commands.command(name="upcoming", description="Post releases MusicBrainz announces ahead of their date.")
    @app_commands.describe(enabled="True: post announced releases of followed artists; False: stop")
    @require_manage_guild()
    async def upcoming(self, interaction: discord.Interaction, enabled: bool | None = None) -> None:
        guild_id = guild_id_of(interaction)
        service = self.bot.services.upcoming
        if enabled is None:
            on = await service.enabled(guild_id)
            await reply(
                interaction,
                f"{upcoming_text(on)} Turn it {'off with `enabled:False`' if on else 'on with `enabled:True`'}. "
                "Nothing was changed.",
            )
            return
        await service.set_enabled(guild_id, enabled)
        await reply(interaction, upcoming_text(enabled))

    @app_commands.command(
        name="schedule", description="Choose the weekly day and time of the automatic post, and release-day posting."
    )
    @app_commands.describe(
        day="Day of the week",
        time="24-hour time, HH:MM",
        timezone="IANA time zone, e.g. Europe/Berlin",
        release_day="Post a release announced for today as soon as Spotify lists it, instead of in the weekly post",
    )
    @app_commands.choices(day=[app_commands.Choice(name=d, value=d.lower()) for d in DAY_NAMES])
    @require_manage_guild()
    async def schedule(
        self,
        interaction: discord.Interaction,
        day: app_commands.Choice[str] | None = None,
        time: app_commands.Range[str, 1, 10] | None = None,
        timezone: app_commands.Range[str, 1, 64] = "UTC",
        release_day: bool | None = None,
    ) -> None:
        guild_id = guild_id_of(interaction)
        if (day is None) != (time is None):
            raise UserError("Give both `day` and `time` to change the weekly post. Nothing was changed.")
        if day is None and release_day is None:
            guild = await self.guild_settings.ensure_guild(guild_id)
            await reply(
                interaction,
                f"New releases are posted every {DAY_NAMES[guild.schedule_day]} at {guild.schedule_time} "
                f"({guild.timezone}). {release_day_text(guild.release_day)} Nothing was changed.",
            )
            return
        lines = []
        if day is not None and time is not None:
            due = await self.guild_settings.set_schedule(guild_id, day.value, time, timezone)
            lines.append(
                f"New releases will be posted every {day.name} at {time.strip()} ({timezone.strip()}). "
                f"Next: <t:{int(due.timestamp())}:F>."
            )
        if release_day is not None:
            await self.guild_settings.set_release_day(guild_id, release_day)
            lines.append(release_day_text(release_day))
        await reply(interaction, "\n".join(lines))

    @app_commands.command(name="types", description="Choose which kinds of releases are posted.")
    @app_commands.describe(
        album="Post albums",
        single="Post singles (1–3 tracks)",
        ep="Post EPs (4–6 tracks; Spotify lists them among singles)",
        compilation="Post compilations",
        appears_on="Post releases the artists only appear on",
    )
    @require_manage_guild()
    async def types(
        self,
        interaction: discord.Interaction,
        album: bool | None = None,
        single: bool | None = None,
        ep: bool | None = None,
        compilation: bool | None = None,
        appears_on: bool | None = None,
    ) -> None:
        asked = {"album": album, "single": single, "ep": ep, "compilation": compilation, "appears_on": appears_on}
        if all(v is None for v in asked.values()):
            current = await self.guild_settings.album_groups(guild_id_of(interaction))
            await reply(interaction, f"Posting: {_types_text(current)}. Nothing was changed.")
            return
        stored = await self.guild_settings.switch_album_groups(guild_id_of(interaction), asked)
        await reply(interaction, f"Posting: {_types_text(stored)}.")

    @app_commands.command(
        name="filters",
        description="Skip versions by title, mute appearances, block keywords, patterns or artists.",
    )
    @app_commands.describe(
        remixes="Skip remixes",
        live="Skip live versions",
        sped_up="Skip sped-up and slowed versions",
        instrumental="Skip instrumental and karaoke versions",
        mute_appearances="A followed artist whose appearances on others' releases are not posted",
        unmute_appearances="A muted artist whose appearances are posted again",
        block_keyword="Never post a release with this word in its title (whole words, any case)",
        unblock_keyword="A blocked keyword to allow again",
        block_pattern="Never post a release whose title matches this RE2 pattern (any case)",
        unblock_pattern="A blocked pattern to allow again",
        block_artist="Never post a release crediting this artist: a Spotify artist link, or a followed artist",
        unblock_artist="A blocked artist to allow again",
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
        block_keyword: app_commands.Range[str, 1, MAX_KEYWORD_LENGTH] | None = None,
        unblock_keyword: app_commands.Range[str, 1, MAX_KEYWORD_LENGTH] | None = None,
        block_pattern: app_commands.Range[str, 1, MAX_PATTERN_LENGTH] | None = None,
        unblock_pattern: app_commands.Range[str, 1, MAX_PATTERN_LENGTH] | None = None,
        block_artist: app_commands.Range[str, 1, 200] | None = None,
        unblock_artist: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        skip = {"remix": remixes, "live": live, "sped_up": sped_up, "instrumental": instrumental}
        lists = {
            "mute": mute_appearances,
            "unmute": unmute_appearances,
            "block_keyword": block_keyword,
            "unblock_keyword": unblock_keyword,
            "block_pattern": block_pattern,
            "unblock_pattern": unblock_pattern,
            "block_artist": block_artist,
            "unblock_artist": unblock_artist,
        }
        if all(v is None for v in skip.values()) and all(v is None for v in lists.values()):
            current = await self.guild_settings.filters(guild_id_of(interaction))
            await reply(interaction, f"{await _filters_text(self.follows, current)} Nothing was changed.")
            return
        if block_artist is not None:
            await interaction.response.defer(ephemeral=True, thinking=True)  # a blocked link may ask Spotify
        stored = await self.guild_settings.set_filters(guild_id_of(interaction), skip=skip, **lists)
        await reply(
            interaction,
            f"{await _filters_text(self.follows, stored)} Releases filtered out are never posted, "
            "even if the filter is turned off later.",
        )

    @filters.autocomplete("mute_appearances")
    async def mute_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        choices = await self.follows.followed_choices(guild_id_of(interaction), current)
        return [app_commands.Choice(name=name, value=artist_id) for name, artist_id in choices]

    @filters.autocomplete("block_artist")
    async def block_artist_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        choices = await self.follows.followed_choices(guild_id_of(interaction), current)
        return [app_commands.Choice(name=name, value=artist_id) for name, artist_id in choices]

    @filters.autocomplete("unmute_appearances")
    async def unmute_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        muted = (await self.guild_settings.filters(guild_id_of(interaction))).mute_appearances
        names = await self.follows.artist_names(muted)
        return _choices(((names.get(a, a), a) for a in muted), current)

    @filters.autocomplete("unblock_keyword")
    async def unblock_keyword_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        keywords = (await self.guild_settings.filters(guild_id_of(interaction))).block_keywords
        return _choices(((k, k) for k in keywords), current)

    @filters.autocomplete("unblock_pattern")
    async def unblock_pattern_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        patterns = (await self.guild_settings.filters(guild_id_of(interaction))).block_patterns
        return _choices(((p, p) for p in patterns), current, by_name=False)

    @filters.autocomplete("unblock_artist")
    async def unblock_artist_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        blocked = (await self.guild_settings.filters(guild_id_of(interaction))).block_artists
        return _choices(((a.name or a.id, a.id) for a in blocked), current)

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


def _choices(pairs: Iterable[tuple[str, str]], current: str, *, by_name: bool = True) -> list[app_commands.Choice[str]]:
    """Autocomplete choices ``(name, value)`` whose name contains ``current`` (case-insensitive), sorted by
    name when ``by_name``, at most 25; names and values cut to Discord's 100 characters."""
    needle = (current or "").strip().casefold()
    found = [(name, value) for name, value in pairs if needle in name.casefold()]
    if by_name:
        found.sort(key=lambda p: p[0].casefold())
    return [app_commands.Choice(name=name[:100], value=value[:100]) for name, value in found][:25]


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:LIST_LIMIT])
    return shown + (f" and {len(items) - LIST_LIMIT} more" if len(items) > LIST_LIMIT else "")


async def _filters_text(follows: FollowService, filters: GuildFilters) -> str:
    skipping = [FILTER_NAMES[k] for k in FILTER_KEYWORDS if k in filters.skip]
    text = f"Skipping {', '.join(skipping)}." if skipping else "No title filter: every version is posted."
    if filters.mute_appearances:
        names = await follows.artist_names(filters.mute_appearances)
        muted = ", ".join(sorted(discord.utils.escape_markdown(names.get(a, a)) for a in filters.mute_appearances))
        text += f" Appearances muted: {muted}."
    if filters.block_keywords:
        keywords = ["“" + discord.utils.escape_markdown(k) + "”" for k in filters.block_keywords]
        text += f" Blocked keywords: {_listed(keywords)}."
    if filters.block_patterns:
        patterns = ["`" + p.replace("`", "ˋ") + "`" for p in filters.block_patterns]  # shown as code, never rendered
        text += f" Blocked patterns: {_listed(patterns)}."
    if filters.block_artists:
        artists = [
            discord.utils.escape_markdown(a.name) if a.name else f"<https://open.spotify.com/artist/{a.id}>"
            for a in filters.block_artists
        ]
        text += f" Blocked artists: {_listed(artists)}."
    return text


def _types_text(types: Iterable[str]) -> str:
    return ", ".join(name for t, name in RELEASE_TYPE_NAMES.items() if t in set(types)) or "nothing"


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Settings(bot))
