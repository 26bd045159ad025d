"""The one clock helper: aware UTC now, and the type of an injectable clock.

Every component that reads the time takes a ``clock: Clock`` (tests inject a simulated one;
with several processes the bot passes the database-corrected clock,
:class:`bot.coordination.coordinator.DatabaseClock`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]
"""A function returning the current time as an aware UTC ``datetime``."""


def utcnow() -> dt.datetime:
    """The host's current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)
