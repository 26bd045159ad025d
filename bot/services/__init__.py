"""What the slash commands and post buttons do, by area, as plain async calls (no discord import, no SQL).

The cogs translate an interaction into one call on ``bot.services`` (a :class:`Services`) and
render the result; every call is scoped to one guild id, so one guild never sees or changes
another's data. Bad input raises :class:`bot.services.errors.UserError` (a message for the
user) and changes nothing. What the services read and write goes through ``storage``'s typed
functions, in scoped transactions; writes that can meet a concurrent twin (two processes, two
guilds, the same guild twice) use storage's race-free statements.

- :mod:`bot.services.guild_settings`: the guild row, ``/settings``, the channel-problem notice;
- :mod:`bot.services.follows`: ``/follow``, ``/unfollow``, ``/following``, autocomplete;
- :mod:`bot.services.runs`: ``/refresh``, ``/history``, ``/preview``, ``/status``;
- :mod:`bot.services.imports`: ``/import`` (a playlist's artists, pasted links or names, a file, a
  Last.fm or ListenBrainz listening history: :mod:`bot.services.import_history`);
- :mod:`bot.services.notify`: ``/notify`` and the 🔔 buttons (a member's own subscriptions);
- :mod:`bot.services.upcoming`: ``/settings upcoming``, ``/upcoming`` (announced releases);
- :mod:`bot.services.post_actions`: the buttons under a release post;
- :mod:`bot.services.text`: user-facing text they share.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.coordination.coordinator import Coordinator
from bot.scheduling.runner import Runner
from bot.services.follows import DEFAULT_MAX_FOLLOWS_PER_GUILD, FollowService
from bot.services.guild_settings import DefaultSchedule, GuildSettingsService
from bot.services.import_history import ListeningHistory
from bot.services.imports import Importer
from bot.services.notify import NotifyService
from bot.services.runs import RunService
from bot.services.upcoming import UpcomingService
from bot.spotify.client import SpotifyClient
from bot.tracking import Tracker
from storage.db import Database

__all__ = ["DefaultSchedule", "Services"]


@dataclass(frozen=True)
class Services:
    """The command services of one bot process (``bot.services`` on the Discord client)."""

    guild_settings: GuildSettingsService
    follows: FollowService
    runs: RunService
    imports: Importer
    notify: NotifyService
    upcoming: UpcomingService

    @classmethod
    def create(
        cls,
        *,
        db: Database,
        spotify: SpotifyClient,
        tracker: Tracker,
        runner: Runner,
        coordinator: Coordinator,
        clock: Clock,
        default_schedule: DefaultSchedule,
        max_follows_per_guild: int = DEFAULT_MAX_FOLLOWS_PER_GUILD,
        history: ListeningHistory | None = None,
    ) -> Services:
        """Build the services on one store and one set of collaborators.

        ``db``: the opened store; ``spotify``: the Spotify client; ``tracker``: takes silent
        baselines; ``runner``: the one run path (``/refresh``); ``coordinator``: this process's
        named leases (one refresh / import per guild across processes); ``clock``: aware UTC now;
        ``default_schedule``: the weekly slot of a new guild; ``max_follows_per_guild``: the
        follow limit of every guild; ``history``: the listening-history clients of ``/import lastfm:``
        and ``listenbrainz:`` (None: not set up).
        """
        guild_settings = GuildSettingsService(db, clock=clock, default_schedule=default_schedule, spotify=spotify)
        follows = FollowService(
            db, spotify, tracker, guild_settings, clock=clock, max_follows_per_guild=max_follows_per_guild
        )
        return cls(
            guild_settings=guild_settings,
            follows=follows,
            runs=RunService(db, guild_settings, runner, coordinator, clock=clock),
            imports=Importer(db, spotify, tracker, guild_settings, follows, coordinator, clock=clock, history=history),
            notify=NotifyService(db, guild_settings, clock=clock),
            upcoming=UpcomingService(db, guild_settings, clock=clock),
        )
