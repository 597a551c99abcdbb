"""mp_jobs.shot_id: ON DELETE SET NULL

Revision ID: 0002
Revises: 0001

A job outlives the shot it was about (a re-ingest or a removed cut deletes shots): the job's
history stays readable with `shot_id` null instead of the delete failing on the reference.
Hand-written; batch mode because SQLite can only change a foreign key by copying the table.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The name models.NAMING gives it ("fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s").
FK_NAME = "fk_mp_jobs_shot_id_mp_shots"


def upgrade() -> None:
    with op.batch_alter_table("mp_jobs", schema=None) as batch_op:
        batch_op.drop_constraint(FK_NAME, type_="foreignkey")
        batch_op.create_foreign_key(FK_NAME, "mp_shots", ["shot_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("mp_jobs", schema=None) as batch_op:
        batch_op.drop_constraint(FK_NAME, type_="foreignkey")
        batch_op.create_foreign_key(FK_NAME, "mp_shots", ["shot_id"], ["id"])
