"""Several bot processes on one database (issue 8 §2): processes, leases and owners.

``processes``: each running ``release-bot`` process and its heartbeat (a process whose
heartbeat is older than the lease time is dead). ``leases``: named leases (command sync, a
guild's refresh, import or delivery) with owner and expiry. ``guilds.lease_owner`` /
``lease_until``: the process running a due guild's weekly run. ``artists.claim_owner`` /
``claim_until``: the process checking an artist now. ``deliveries.owner`` and ``runs.owner``:
the process that claimed a ledger row or started a run, so start-up recovery touches only
what a dead process left.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("shard_ids", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("guilds") as b:
        b.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        b.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
    with op.batch_alter_table("artists") as b:
        b.add_column(sa.Column("claim_owner", sa.String(64), nullable=True))
        b.add_column(sa.Column("claim_until", sa.DateTime(), nullable=True))
    with op.batch_alter_table("deliveries") as b:
        b.add_column(sa.Column("owner", sa.String(64), nullable=True))
    with op.batch_alter_table("runs") as b:
        b.add_column(sa.Column("owner", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as b:
        b.drop_column("owner")
    with op.batch_alter_table("deliveries") as b:
        b.drop_column("owner")
    with op.batch_alter_table("artists") as b:
        b.drop_column("claim_until")
        b.drop_column("claim_owner")
    with op.batch_alter_table("guilds") as b:
        b.drop_column("lease_until")
        b.drop_column("lease_owner")
    op.drop_table("leases")
    op.drop_table("processes")
