"""Re-runs name the job they re-run; worker heartbeats carry their GPUs' use

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobyard_jobs", sa.Column("rerun_of", sa.Uuid(), nullable=True))
    op.create_index("ix_jobyard_jobs_rerun_of", "jobyard_jobs", ["rerun_of"])
    op.add_column(
        "jobyard_workers",
        sa.Column("gpus", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("jobyard_workers", "gpus")
    op.drop_index("ix_jobyard_jobs_rerun_of", table_name="jobyard_jobs")
    with op.batch_alter_table("jobyard_jobs") as batch:
        batch.drop_column("rerun_of")
