"""jobs that exited with code 0 show "succeeded" (they showed "stopped", like a job stopped
by request)

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE resources SET status = 'succeeded' WHERE type = 'job' AND status = 'stopped' "
        "AND status_reason LIKE 'job exited with code 0%'"
    )


def downgrade() -> None:
    op.execute("UPDATE resources SET status = 'stopped' WHERE status = 'succeeded'")
