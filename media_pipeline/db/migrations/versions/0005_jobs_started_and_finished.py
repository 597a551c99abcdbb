"""mp_jobs: when the job's run started and when it finished

Revision ID: 0005
Revises: 0004

`started_at` and `finished_at` come from the run's own record (its start and end times, as
Dagster stored them), written by the job tracker. With `created_at` they give each job's queue
wait (created to started) and processing time (started to finished), which /metrics reports as
histograms read from this table. Rows written before this revision have neither.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mp_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mp_jobs", schema=None) as batch_op:
        batch_op.drop_column("finished_at")
        batch_op.drop_column("started_at")
