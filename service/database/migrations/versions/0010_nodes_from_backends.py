"""nodes from backends: each node's address, state and why it takes no work; where each
process landed

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("address", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("state", sa.String(100), nullable=False, server_default="up"))
        batch.add_column(
            sa.Column("schedulable", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("reason", sa.String(500), nullable=False, server_default=""))
    with op.batch_alter_table("processes") as batch:
        batch.add_column(sa.Column("node", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processes") as batch:
        batch.drop_column("node")
    with op.batch_alter_table("nodes") as batch:
        for column in ("reason", "schedulable", "state", "address"):
            batch.drop_column(column)
