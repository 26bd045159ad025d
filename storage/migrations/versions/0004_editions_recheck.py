"""Editions folded at the source and the rotating exact re-check (issue 7).

``releases.folded_into``: the release (known before this one) that this one is another
edition of — a clean/explicit twin or a re-issue under a new id — so it is never announced
on its own. ``artists.exact_checked_at``: when the artist's tracked listing was last read
whole (baseline or rotating re-check).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as b:
        b.add_column(sa.Column("folded_into", sa.String(32), nullable=True))
    with op.batch_alter_table("artists") as b:
        b.add_column(sa.Column("exact_checked_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE artists SET exact_checked_at = baselined_at")


def downgrade() -> None:
    with op.batch_alter_table("artists") as b:
        b.drop_column("exact_checked_at")
    with op.batch_alter_table("releases") as b:
        b.drop_column("folded_into")
