"""job runs: every run of a job (scheduled, manual, retry) is a row of its own

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "resource_id",
            sa.String(length=32),
            sa.ForeignKey("resources.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("handle", sa.JSON(), nullable=True),
        sa.UniqueConstraint("resource_id", "number"),
        sa.UniqueConstraint("resource_id", "scheduled_for"),
    )
    op.create_index("ix_job_runs_open", "job_runs", ["finished_at"])
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("schedule_since", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("schedule_since")
    op.drop_index("ix_job_runs_open", table_name="job_runs")
    op.drop_table("job_runs")
