"""Per-guild release filters and role mention (issue 4 §2, §3).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("guilds") as b:
        b.add_column(sa.Column("filters", sa.JSON(), nullable=False, server_default="{}"))
        b.add_column(sa.Column("mention_role_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("guilds") as b:
        b.drop_column("mention_role_id")
        b.drop_column("filters")
