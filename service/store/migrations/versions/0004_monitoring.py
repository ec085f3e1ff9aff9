"""monitoring store: raw samples, minute rollups, alerts and idle reclaims

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
        "samples",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("resource_id", sa.String(length=32), _resource(), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
    )
    op.create_index("ix_samples_resource_at", "samples", ["resource_id", "at"])
    op.create_index("ix_samples_at", "samples", ["at"])
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
    )
    op.create_index("ix_rollups_minute", "rollups", ["minute"])
    op.create_table(
        "monitoring_state",
        sa.Column("name", sa.String(length=63), primary_key=True),
        sa.Column("value", sa.Double(), nullable=False),
    )
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
    for table in ("reclaims", "alert_events", "alert_rules", "monitoring_state", "rollups"):
        op.drop_table(table)
    op.drop_table("samples")
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("target_reason")
