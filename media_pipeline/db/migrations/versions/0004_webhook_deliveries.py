"""mp_webhook_deliveries: every attempt to POST a finished job to its callback URL

Revision ID: 0004
Revises: 0003

One row per attempt (job, attempt number, when, the receiver's status code or the error),
`delivered` on the attempt that succeeded and `next_attempt_at` on the latest failed one while
attempts are left: the delivery sensor finds due work with one indexed query.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mp_webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["mp_jobs.id"], name="fk_mp_webhook_deliveries_job_id_mp_jobs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mp_webhook_deliveries"),
        sa.UniqueConstraint("job_id", "attempt", name="uq_mp_webhook_deliveries_attempt"),
    )
    op.create_index("ix_mp_webhook_deliveries_job_id", "mp_webhook_deliveries", ["job_id"])
    op.create_index("ix_mp_webhook_deliveries_next_attempt_at", "mp_webhook_deliveries", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_mp_webhook_deliveries_next_attempt_at", table_name="mp_webhook_deliveries")
    op.drop_index("ix_mp_webhook_deliveries_job_id", table_name="mp_webhook_deliveries")
    op.drop_table("mp_webhook_deliveries")
