"""shared use: groups, quotas, secrets, images, audit events, allocations, GPU shares

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _when() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(), nullable=False)


def _big_id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("created_by", sa.String(63), nullable=False, server_default=""))
    with op.batch_alter_table("processes") as batch:
        batch.add_column(sa.Column("gpu_share", sa.Double(), nullable=False, server_default="1"))
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        _when(),
    )
    op.create_table(
        "group_members",
        sa.Column(
            "group_id",
            sa.Integer(),
            sa.ForeignKey("groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("role", sa.String(10), nullable=False),
    )
    op.create_table(
        "quotas",
        sa.Column("owner", sa.String(63), primary_key=True),
        sa.Column("gpus", sa.Double(), nullable=True),
        sa.Column("cpus", sa.Double(), nullable=True),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("resources", sa.Integer(), nullable=True),
    )
    op.create_table(
        "secrets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _when(),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("owner", "name"),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner", sa.String(63), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(100), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        _when(),
        sa.UniqueConstraint("owner", "name", "tag"),
    )
    op.create_table(
        "audit_events",
        _big_id(),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_table(
        "allocations",
        _big_id(),
        sa.Column("process_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(63), nullable=False),
        sa.Column("resource", sa.String(200), nullable=False),
        sa.Column("process", sa.String(100), nullable=False),
        sa.Column("gpus", sa.Double(), nullable=False),
        sa.Column("cpu", sa.Double(), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_allocations_open", "allocations", ["ended_at"])
    op.create_index("ix_allocations_owner_start", "allocations", ["owner", "started_at"])


def downgrade() -> None:
    for table in ("allocations", "audit_events", "images", "secrets", "quotas"):
        op.drop_table(table)
    op.drop_table("group_members")
    op.drop_table("groups")
    with op.batch_alter_table("processes") as batch:
        batch.drop_column("gpu_share")
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("created_by")
