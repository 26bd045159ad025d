"""Tracking economy and labels: per-guild album groups, artist activity, release labels
and tracks, run metrics, per-day request budget.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("guilds") as b:
        b.add_column(
            sa.Column("album_groups", sa.JSON(), nullable=False, server_default='["album", "single", "compilation"]')
        )
    with op.batch_alter_table("artists") as b:
        b.add_column(sa.Column("last_release_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("runs_skipped", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("releases") as b:
        b.add_column(sa.Column("labels", sa.JSON(), nullable=False, server_default="[]"))
        b.add_column(sa.Column("upc", sa.String(length=32), nullable=True))
        b.add_column(sa.Column("tracks_fetched", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("runs") as b:
        b.add_column(sa.Column("metrics", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("spotify_state") as b:
        b.add_column(sa.Column("budget_day", sa.String(length=10), nullable=True))
        b.add_column(sa.Column("budget_day_requests", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "release_tracks",
        sa.Column("release_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("isrc", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("release_id", "position"),
    )
    op.create_index("ix_release_tracks_isrc", "release_tracks", ["isrc"])


def downgrade() -> None:
    op.drop_index("ix_release_tracks_isrc", table_name="release_tracks")
    op.drop_table("release_tracks")
    for table, cols in (
        ("spotify_state", ("budget_day_requests", "budget_day")),
        ("runs", ("metrics",)),
        ("releases", ("tracks_fetched", "upc", "labels")),
        ("artists", ("runs_skipped", "last_release_at")),
        ("guilds", ("album_groups",)),
    ):
        with op.batch_alter_table(table) as b:
            for col in cols:
                b.drop_column(col)
