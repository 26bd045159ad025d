"""Change detection (no discord): :class:`Tracker` finds and stores new releases."""

from bot.tracking.tracker import (
    TRACKED_GROUPS,
    Tracker,
    TrackResult,
    cooldown_reason,
    failure_reason,
)

__all__ = ["TRACKED_GROUPS", "TrackResult", "Tracker", "cooldown_reason", "failure_reason"]
