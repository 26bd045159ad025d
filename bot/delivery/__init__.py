"""What to post and posting it (no discord import): planner → render → deliverer."""

from bot.delivery.deliverer import ChannelUnavailable, Deliverer, DeliveryResult, Sender, make_nonce
from bot.delivery.planner import Announcement, fold_twins, pending_announcements, pending_releases
from bot.delivery.render import (
    announcement_embed,
    embed_size,
    format_release_date,
    pack_messages,
    release_embed,
    render_messages,
)

__all__ = [
    "Announcement",
    "ChannelUnavailable",
    "Deliverer",
    "DeliveryResult",
    "Sender",
    "announcement_embed",
    "embed_size",
    "fold_twins",
    "format_release_date",
    "make_nonce",
    "pack_messages",
    "pending_announcements",
    "pending_releases",
    "release_embed",
    "render_messages",
]
