"""mp_jobs.callback_url (stand-in for jobcontract's 0003)

Revision ID: 0003
Revises: 0002

Only here so that 0004 (the webhook deliveries) has its parent while the job contract's own
migration 0003 (subject_type, subject_id, source, callback_url on mp_jobs) is not on main.
When that lands, keep its file and delete this one: it adds the same `callback_url` column.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mp_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_url", sa.String(length=2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mp_jobs", schema=None) as batch_op:
        batch_op.drop_column("callback_url")
