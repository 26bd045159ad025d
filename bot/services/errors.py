"""The one error the command services raise for the user to read."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an impossible request; ``str()`` is the message to show the user.

    Raised before anything is changed (or with the change rolled back): the cogs answer it
    ephemerally as it is (``cogs.notices.on_app_command_error``; the post buttons:
    ``bot.discord_app.post_buttons.run_action``).
    """


class NotFollowed(UserError):
    """The guild does not follow the artist named (``str()``: the message for ``/unfollow``)."""
