"""Members and channels choosing what reaches them.

``guilds.publish``: crosspost the bot's posts in an announcement channel. ``routes``: a guild's
release type or artist sent to another channel than its default. ``subscriptions``: a member
asked to be notified of an artist's releases; ``members``: how (``mention`` or ``dm``), and the
private notice owed after Discord refused a DM. ``deliveries`` learns where a release went
(``destination``: ``message`` or ``forum``) and its crosspost state. ``mention_posts``: the
follow-up messages carrying mentions past one message's limits, each posted once.
``dm_deliveries``: one direct message per (member, release), claimed, sent, confirmed.

EPs become a release type of their own: a guild that posted singles keeps getting EPs (which
Spotify labels ``single``), so ``ep`` is added to every guild's types that include ``single``.

Revision ID: 0006
Revises: 0005
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("guilds") as b:
        b.add_column(sa.Column("publish", sa.Boolean(), nullable=False, server_default=sa.false()))
    guilds = sa.table("guilds", sa.column("id", sa.BigInteger()), sa.column("album_groups", sa.JSON()))
    conn = op.get_bind()
    for guild_id, groups in conn.execute(sa.select(guilds.c.id, guilds.c.album_groups)).all():
        groups = json.loads(groups) if isinstance(groups, str) else groups
        if groups and "single" in groups and "ep" not in groups:
            conn.execute(guilds.update().where(guilds.c.id == guild_id).values(album_groups=[*groups, "ep"]))
    op.create_table(
        "routes",
        sa.Column("guild_id", sa.BigInteger(), sa.ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "members",
        sa.Column("guild_id", sa.BigInteger(), sa.ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), primary_key=True),
        sa.Column("mode", sa.String(8), nullable=False, server_default="mention"),
        sa.Column("dm_closed_at", sa.DateTime(), nullable=True),
        sa.Column("dm_notice_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "subscriptions",
        sa.Column("guild_id", sa.BigInteger(), sa.ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), primary_key=True),
        sa.Column("artist_id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_subscriptions_guild_artist", "subscriptions", ["guild_id", "artist_id"])
    with op.batch_alter_table("deliveries") as b:
        b.add_column(sa.Column("destination", sa.String(8), nullable=True))
        b.add_column(sa.Column("publish_state", sa.String(8), nullable=True))
        b.add_column(sa.Column("publish_after", sa.DateTime(), nullable=True))
    op.create_table(
        "mention_posts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("guild_id", sa.BigInteger(), sa.ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False),
        sa.Column("post_key", sa.String(64), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("user_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("guild_id", "post_key", "part", name="uq_mention_post_part"),
    )
    op.create_table(
        "dm_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("release_id", sa.String(32), sa.ForeignKey("releases.id"), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), sa.ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("user_id", "release_id", name="uq_dm_user_release"),
    )
    op.create_index("ix_dm_deliveries_status", "dm_deliveries", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_dm_deliveries_status", "dm_deliveries")
    op.drop_table("dm_deliveries")
    op.drop_table("mention_posts")
    with op.batch_alter_table("deliveries") as b:
        b.drop_column("publish_after")
        b.drop_column("publish_state")
        b.drop_column("destination")
    op.drop_index("ix_subscriptions_guild_artist", "subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("members")
    op.drop_table("routes")
    with op.batch_alter_table("guilds") as b:
        b.drop_column("publish")
