"""Announced releases and release-day probing.

``guilds.upcoming``: post announced releases (off by default); ``guilds.release_day``: probe the
artists of a release announced for today on that day (off by default).
``upcoming_posts``: the announcement ledger, one row per (guild, release group): claimed before the
message is sent and confirmed after (``status`` claimed|posted|skipped), with the date and state the
message shows (``shown_date``, ``shown_state`` announced|postponed|gone), so a date change or a
disappearance edits that message once and never makes a new post.
``release_day_probes``: the probes of a release group's artists on its release day (at most a few,
counted in the day's budget), and when Spotify was found to list it.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("guilds") as batch:
        batch.add_column(sa.Column("upcoming", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("release_day", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "upcoming_posts",
        sa.Column("guild_id", sa.BigInteger(), sa.ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "release_group_mbid",
            sa.String(36),
            sa.ForeignKey("musicbrainz_release_groups.mbid", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("destination", sa.String(8), nullable=False, server_default="message"),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("thread_id", sa.BigInteger(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("posted_at", sa.DateTime(), nullable=True),
        sa.Column("shown_date", sa.Date(), nullable=True),
        sa.Column("shown_state", sa.String(10), nullable=False, server_default="announced"),
        sa.Column("edited_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_upcoming_posts_status", "upcoming_posts", ["status"])
    op.create_table(
        "release_day_probes",
        sa.Column(
            "release_group_mbid",
            sa.String(36),
            sa.ForeignKey("musicbrainz_release_groups.mbid", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("release_day", sa.Date(), primary_key=True),
        sa.Column("probes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("requests", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_probe_at", sa.DateTime(), nullable=True),
        sa.Column("last_probe_at", sa.DateTime(), nullable=True),
        sa.Column("found_at", sa.DateTime(), nullable=True),
        sa.Column("spotify_release_id", sa.String(32), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("release_day_probes")
    op.drop_index("ix_upcoming_posts_status", table_name="upcoming_posts")
    op.drop_table("upcoming_posts")
    with op.batch_alter_table("guilds") as batch:
        batch.drop_column("release_day")
        batch.drop_column("upcoming")
