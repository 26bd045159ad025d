"""The one error the command services raise for the user to read, and the message for a database
that cannot be written (its disk full, or read-only)."""

from __future__ import annotations

from storage.db import unwritable_reason

__all__ = ["NotFollowed", "UserError", "store_unwritable_text", "unwritable_reason"]


class UserError(Exception):
    """Bad input or an impossible request; ``str()`` is the message to show the user.

    Raised before anything is changed (or with the change rolled back): the cogs answer it
    ephemerally as it is (``cogs.notices.on_app_command_error``; the post buttons:
    ``bot.discord_app.post_buttons.run_action``).
    """


class NotFollowed(UserError):
    """The guild does not follow the artist named (``str()``: the message for ``/unfollow``)."""


def store_unwritable_text(exc: BaseException) -> str | None:
    """The member's message when ``exc`` is the database refusing a write for want of disk space or
    permission (``storage.db.unwritable_reason``: its disk is full, or it is read-only); None for any
    other error. Such a failure changed nothing and passes by itself once the operator fixes the disk."""
    reason = unwritable_reason(exc)
    if reason is None:
        return None
    return (
        f"⚠ I can't save anything right now: my database cannot be written ({reason}). Nothing was changed and nothing is "
        "lost — tell the bot's operator; once that is fixed I catch up by myself. Please try again later."
    )
