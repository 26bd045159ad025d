"""Retrying a guild's failed posts soon, not at its next weekly run.

``guilds.delivery_retry_at`` (UTC): when the due scan tries the guild's pending posts again after
Discord failed them (a 5xx after discord.py's own retries, a long or global 429, a network error);
NULL when nothing waits for a retry. ``guilds.delivery_failures``: failed deliveries in a row (picks
the back-off; 0 after a success). ``guilds.last_delivery_error``: what Discord answered, for
``/status`` and the ``/refresh`` reply.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("guilds") as batch:
        batch.add_column(sa.Column("delivery_retry_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("delivery_failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_delivery_error", sa.Text(), nullable=True))
        batch.create_index(batch.f("ix_guilds_delivery_retry_at"), ["delivery_retry_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("guilds") as batch:
        batch.drop_index(batch.f("ix_guilds_delivery_retry_at"))
        batch.drop_column("last_delivery_error")
        batch.drop_column("delivery_failures")
        batch.drop_column("delivery_retry_at")
