"""Store set-up shared by the tracking, delivery and runner tests, and the Spotify client they talk to:
the real :class:`~bot.spotify.client.SpotifyClient` on the Spotify emulator (``fakes/spotify_emulator.py``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping

from sqlalchemy import select

from bot.delivery.components import PostButtons
from bot.delivery.render import AllowedMentions
from bot.delivery.sending import Destination
from bot.scheduling.due import next_due
from bot.spotify.client import SpotifyClient
from fakes.spotify_emulator import SpotifyEmulator
from storage import catalog, guilds
from storage.db import Database
from storage.models import ArtistRelease, Delivery

UNTIL_CLEARED = 10**6
"""``count`` of an emulator fault (``fail_next``) that lasts until ``clear_faults()``."""


async def no_wait(_seconds: float) -> None:
    """The client's sleep between retries, made instant."""


def emulator_client(emu: SpotifyEmulator, clock: Callable[[], dt.datetime]) -> SpotifyClient:
    """The real Spotify client on ``emu`` with the test's clock, no sleeping, no retry (``max_retries=0``:
    a failed call is one request, as Spotify counts it) and no client-side rate limit. Close it after."""
    return SpotifyClient(
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        api_base_url=emu.api_base_url,
        accounts_base_url=emu.accounts_base_url,
        clock=clock,
        sleep=no_wait,
        max_retries=0,
    )


async def add_guild(
    db: Database,
    guild_id: int,
    *,
    now: dt.datetime,
    channel_id: int | None = 100,
    schedule_day: int = 4,
    schedule_time: str = "09:00",
    timezone: str = "UTC",
) -> None:
    """A guild with a channel (``channel_id`` None: none set) and a weekly slot (default Friday 09:00 UTC)."""
    async with db.sessions() as session:
        guild = await guilds.get_or_create_guild(
            session,
            guild_id,
            now=now,
            next_due_at=next_due(schedule_day, schedule_time, timezone, now),
            schedule_day=schedule_day,
            schedule_time=schedule_time,
            timezone=timezone,
        )
        guild.channel_id = channel_id
        await session.commit()


async def follow(db: Database, guild_id: int, artist_id: str, name: str = "Artist", *, now: dt.datetime) -> None:
    """Guild follows artist since ``now`` (the artist row is created, not baselined)."""
    async with db.sessions() as session:
        await catalog.get_or_create_artist(session, artist_id, name)
        await guilds.follow_artist(session, guild_id, artist_id, now=now)
        await session.commit()


async def links(db: Database, artist_id: str) -> dict[str, bool]:
    """release id → baseline flag for the artist's links."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(ArtistRelease.release_id, ArtistRelease.baseline).where(ArtistRelease.artist_id == artist_id)
        )
        return dict(rows.all())


async def ledger(db: Database, guild_id: int) -> list[Delivery]:
    """The guild's delivery rows, by id."""
    async with db.sessions() as session:
        return list(
            (await session.scalars(select(Delivery).where(Delivery.guild_id == guild_id).order_by(Delivery.id))).all()
        )


class FakeSender:
    """A ``Sender`` of text channels recording messages; ``fail_with`` (an exception) makes the next sends
    raise it. Forums, crossposts and DMs are served by ``tests/bot/delivery/fake_discord.py``."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, list[dict], str]] = []
        self.contents: list[str | None] = []  # each message's content, in the order of ``messages``
        self.fail_with: BaseException | None = None
        self.fail_times: int | None = None  # None: every send while fail_with is set
        self._next_id = 1000

    async def destination(self, channel_id: int) -> Destination:
        """Every channel is a text channel."""
        return Destination(channel_id, "text")

    async def send(
        self,
        channel_id: int,
        embeds: list[dict],
        *,
        nonce: str,
        buttons: PostButtons | None = None,
        content: str | None = None,
        allowed_mentions: AllowedMentions | None = None,
        reply_to: int | None = None,
    ) -> int:
        if self.fail_with is not None:
            exc = self.fail_with
            if self.fail_times is not None:
                self.fail_times -= 1
                if self.fail_times <= 0:
                    self.fail_with = self.fail_times = None
            raise exc
        assert (len(embeds) >= 1 or content) and len(embeds) <= 10 and len(nonce) <= 25
        self.messages.append((channel_id, embeds, nonce))
        self.contents.append(content)
        self._next_id += 1
        return self._next_id

    async def find_content(
        self, channel_id: int, content: str, *, limit: int = 100, exclude: Collection[int] = ()
    ) -> int | None:
        """The newest of the ``limit`` latest messages in ``channel_id`` whose content is ``content``
        (ids in ``exclude`` skipped)."""
        first_id = self._next_id - len(self.messages) + 1
        recent = [
            (first_id + i, text)
            for i, ((ch, _e, _n), text) in enumerate(zip(self.messages, self.contents, strict=True))
            if ch == channel_id
        ]
        return next((mid for mid, text in reversed(recent[-limit:]) if text == content and mid not in exclude), None)

    async def create_forum_post(self, forum_id: int, **post: object) -> int:
        raise AssertionError("FakeSender serves text channels only")

    async def edit_message(self, channel_id: int, message_id: int, *, content: str, embeds: list[dict]) -> None:
        raise AssertionError("FakeSender edits nothing")

    async def create_forum_tags(self, forum_id: int, names: list[str]) -> dict[str, int]:
        raise AssertionError("FakeSender serves text channels only")

    async def find_forum_posts(self, forum_id: int, wanted: Mapping[str, str]) -> dict[str, int]:
        raise AssertionError("FakeSender serves text channels only")

    async def crosspost(self, channel_id: int, message_id: int) -> bool:
        raise AssertionError("FakeSender serves text channels only")

    async def open_dm(self, user_id: int) -> int:
        raise AssertionError("FakeSender sends no DM")

    async def send_dm(self, dm_channel_id: int, embeds: list[dict], *, nonce: str, content: str) -> int:
        raise AssertionError("FakeSender sends no DM")

    async def find_dm(self, dm_channel_id: int, album_url: str, *, limit: int = 100) -> int | None:
        raise AssertionError("FakeSender sends no DM")

    async def is_member(self, guild_id: int, user_id: int) -> bool:
        raise AssertionError("FakeSender sends no DM")

    async def find_posted(self, channel_id: int, album_urls: list[str], *, limit: int = 100) -> dict[str, int]:
        """Among the ``limit`` latest messages posted to ``channel_id``, the id of the newest whose
        embed ``url`` is each of ``album_urls`` (as ``DiscordSender.find_posted``)."""
        first_id = self._next_id - len(self.messages) + 1  # messages are numbered in order
        recent = [(first_id + i, embeds) for i, (ch, embeds, _) in enumerate(self.messages) if ch == channel_id]
        found: dict[str, int] = {}
        for mid, embeds in reversed(recent[-limit:]):
            for embed in embeds:
                if embed["url"] in album_urls:
                    found.setdefault(embed["url"], mid)
        return found

    def titles(self) -> list[str]:
        """Every posted embed title, in order."""
        return [e["title"] for _, embeds, _ in self.messages for e in embeds]

    def urls(self) -> list[str]:
        """Every posted embed URL, in order."""
        return [e["url"] for _, embeds, _ in self.messages for e in embeds]
