"""What to post and posting it (no discord import): planner → render → deliverer."""

from bot.delivery.deliverer import (
    ChannelUnavailable,
    Deliverer,
    DeliveryResult,
    Sender,
    make_nonce,
)
from bot.delivery.planner import (
    DEFAULT_ALBUM_GROUPS,
    Announcement,
    fold_twins,
    guild_album_groups,
    pending_announcements,
    pending_releases,
    split_pending,
    unwanted_releases,
)
from bot.delivery.render import (
    announcement_embed,
    embed_size,
    format_release_date,
    label_lines,
    pack_messages,
    release_embed,
    render_messages,
)

__all__ = [
    "DEFAULT_ALBUM_GROUPS",
    "Announcement",
    "ChannelUnavailable",
    "Deliverer",
    "DeliveryResult",
    "Sender",
    "announcement_embed",
    "embed_size",
    "fold_twins",
    "format_release_date",
    "guild_album_groups",
    "label_lines",
    "make_nonce",
    "pack_messages",
    "pending_announcements",
    "pending_releases",
    "release_embed",
    "render_messages",
    "split_pending",
    "unwanted_releases",
]
