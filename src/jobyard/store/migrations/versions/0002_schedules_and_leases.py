"""schedules, the leader lease, and the schedule a job was fired by

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ACTIVE = "schedule_id IS NOT NULL AND state IN ('queued', 'running', 'retrying')"


def upgrade() -> None:
    op.create_table(
        "jobyard_schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column(
            "args",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("priority", sa.SmallInteger(), nullable=True),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=True),
        sa.Column("jitter_s", sa.Float(), nullable=False),
        sa.Column("overlap", sa.String(length=16), nullable=False),
        sa.Column("catchup", sa.String(length=16), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("managed_by", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("anchor_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_job_id", sa.Uuid(), nullable=True),
        sa.Column("fired_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("skipped_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobyard_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_jobyard_schedules_name")),
    )
    op.create_index(
        op.f("ix_jobyard_schedules_paused_next_due_at"),
        "jobyard_schedules",
        ["paused", "next_due_at"],
    )
    leases = op.create_table(
        "jobyard_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_jobyard_leases")),
    )
    op.bulk_insert(
        leases,
        [{"name": "scheduler", "holder": None, "token": 0, "expires_at": 0.0, "acquired_at": 0.0}],
    )
    op.add_column("jobyard_jobs", sa.Column("schedule_id", sa.Uuid(), nullable=True))
    op.add_column(
        "jobyard_jobs", sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        op.f("ix_jobyard_jobs_schedule_id_scheduled_for"),
        "jobyard_jobs",
        ["schedule_id", "scheduled_for"],
        unique=True,
    )
    op.create_index(
        "ix_jobyard_jobs_schedule_active",
        "jobyard_jobs",
        ["schedule_id"],
        postgresql_where=sa.text(ACTIVE),
        sqlite_where=sa.text(ACTIVE),
    )


def downgrade() -> None:
    op.drop_index("ix_jobyard_jobs_schedule_active", table_name="jobyard_jobs")
    op.drop_index(op.f("ix_jobyard_jobs_schedule_id_scheduled_for"), table_name="jobyard_jobs")
    with op.batch_alter_table("jobyard_jobs") as batch_op:
        batch_op.drop_column("scheduled_for")
        batch_op.drop_column("schedule_id")
    op.drop_table("jobyard_leases")
    op.drop_index(op.f("ix_jobyard_schedules_paused_next_due_at"), table_name="jobyard_schedules")
    op.drop_table("jobyard_schedules")
