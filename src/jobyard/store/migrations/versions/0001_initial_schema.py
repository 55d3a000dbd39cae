"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobyard_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("pool", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=200), nullable=False),
        sa.Column(
            "args",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("submitted_by", sa.String(length=200), nullable=True),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("progress_message", sa.Text(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(length=200), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobyard_jobs")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_jobyard_jobs_idempotency_key")),
    )
    with op.batch_alter_table("jobyard_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobyard_jobs_pool_id"), ["pool", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobyard_jobs_state_id"), ["state", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_jobyard_jobs_state_pool"), ["state", "pool"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_jobyard_jobs_type_id"), ["type", "id"], unique=False)

    op.create_table(
        "jobyard_workers",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("pool", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("celery_pool", sa.String(length=16), nullable=False),
        sa.Column("queue", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobyard_workers")),
    )
    with op.batch_alter_table("jobyard_workers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_jobyard_workers_pool_heartbeat_at"),
            ["pool", "heartbeat_at"],
            unique=False,
        )

    op.create_table(
        "jobyard_job_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(length=200), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobyard_jobs.id"],
            name=op.f("fk_jobyard_job_attempts_job_id_jobyard_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobyard_job_attempts")),
        sa.UniqueConstraint(
            "job_id", "attempt", name=op.f("uq_jobyard_job_attempts_job_id_attempt")
        ),
    )
    op.create_table(
        "jobyard_job_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobyard_jobs.id"],
            name=op.f("fk_jobyard_job_logs_job_id_jobyard_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobyard_job_logs")),
    )
    with op.batch_alter_table("jobyard_job_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_jobyard_job_logs_job_id_id"), ["job_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("jobyard_job_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobyard_job_logs_job_id_id"))

    op.drop_table("jobyard_job_logs")
    op.drop_table("jobyard_job_attempts")
    with op.batch_alter_table("jobyard_workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobyard_workers_pool_heartbeat_at"))

    op.drop_table("jobyard_workers")
    with op.batch_alter_table("jobyard_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobyard_jobs_type_id"))
        batch_op.drop_index(batch_op.f("ix_jobyard_jobs_state_pool"))
        batch_op.drop_index(batch_op.f("ix_jobyard_jobs_state_id"))
        batch_op.drop_index(batch_op.f("ix_jobyard_jobs_pool_id"))

    op.drop_table("jobyard_jobs")
