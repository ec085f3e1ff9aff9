"""monitoring store: raw sample chunks, minute rollups, alerts and idle reclaims

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _resource() -> sa.ForeignKey:
    return sa.ForeignKey("resources.id", ondelete="CASCADE")


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("target_reason", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "sample_chunks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("resource_id", sa.String(length=32), _resource(), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("start_at", sa.Double(), nullable=False),
        sa.Column("end_at", sa.Double(), nullable=False),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.Column("rolled", sa.Boolean(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_sample_chunks_resource_start", "sample_chunks", ["resource_id", "start_at"])
    op.create_index("ix_sample_chunks_end", "sample_chunks", ["end_at"])
    op.create_index("ix_sample_chunks_rolled", "sample_chunks", ["rolled", "end_at"])
    op.create_table(
        "rollups",
        sa.Column("resource_id", sa.String(length=32), _resource(), nullable=False),
        sa.Column("metric", sa.String(length=63), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("avg", sa.Double(), nullable=False),
        sa.Column("min", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("resource_id", "metric", "minute", "source"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_rollups_minute", "rollups", ["minute"])
    op.create_table(
        "alert_rules",
        sa.Column("name", sa.String(length=63), primary_key=True),
        sa.Column("metric", sa.String(length=63), nullable=False),
        sa.Column("comparison", sa.String(length=2), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("for_seconds", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(length=63), nullable=False),
        sa.Column("resource_id", sa.String(length=32), _resource(), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_alert_events_open", "alert_events", ["rule", "resource_id", "source", "state"]
    )
    op.create_table(
        "reclaims",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("resource_id", sa.String(length=32), _resource(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("idle_seconds", sa.Double(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("gpu_seconds", sa.Double(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in ("reclaims", "alert_events", "alert_rules", "rollups"):
        op.drop_table(table)
    op.drop_table("sample_chunks")
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("target_reason")
