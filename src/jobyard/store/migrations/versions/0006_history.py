"""Queue depth samples and an index on finished_at (the dashboard's stored history); artifacts

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
    op.create_table(
        "jobyard_artifacts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobyard_jobs.id"],
            name="fk_jobyard_artifacts_job_id_jobyard_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_jobyard_artifacts"),
        sa.UniqueConstraint("job_id", "name", name="uq_jobyard_artifacts_job_id_name"),
    )
    op.create_index("ix_jobyard_artifacts_created_at", "jobyard_artifacts", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobyard_artifacts_created_at", table_name="jobyard_artifacts")
    op.drop_table("jobyard_artifacts")
    op.drop_index("ix_jobyard_jobs_finished_at", table_name="jobyard_jobs")
    op.drop_index("ix_jobyard_pool_samples_sampled_at", table_name="jobyard_pool_samples")
    op.drop_table("jobyard_pool_samples")
