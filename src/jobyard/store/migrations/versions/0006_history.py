"""Queue depth samples and an index on finished_at, for the dashboard's stored history

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobyard_pool_samples",
        sa.Column("pool", sa.String(64), nullable=False),
        sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("running", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pool", "sampled_at", name="pk_jobyard_pool_samples"),
    )
    op.create_index("ix_jobyard_pool_samples_sampled_at", "jobyard_pool_samples", ["sampled_at"])
    op.create_index("ix_jobyard_jobs_finished_at", "jobyard_jobs", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jobyard_jobs_finished_at", table_name="jobyard_jobs")
    op.drop_index("ix_jobyard_pool_samples_sampled_at", table_name="jobyard_pool_samples")
    op.drop_table("jobyard_pool_samples")
