"""mp_jobs: a job is about any subject, records who started it and where to call back

Revision ID: 0003
Revises: 0002

`cut_version_id`/`shot_id` become `subject_type`/`subject_id` (a shot job's subject is its shot,
every other job's its cut), so areas other than editorial need no column of their own. `source`
says who started the run (`api`, `sensor`, `ui`, `retry`): existing rows were all POSTed to the
API. `callback_url` is where the job's final state is POSTed. Hand-written; batch mode because
SQLite can only drop a column with a foreign key by copying the table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CUT_FK = "fk_mp_jobs_cut_version_id_mp_cut_versions"
SHOT_FK = "fk_mp_jobs_shot_id_mp_shots"
jobs = sa.table(
    "mp_jobs",
    sa.column("cut_version_id", sa.Integer),
    sa.column("shot_id", sa.Integer),
    sa.column("subject_type", sa.String),
    sa.column("subject_id", sa.String),
    sa.column("source", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("mp_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_type", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("subject_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=20), nullable=False, server_default="api"))
        batch_op.add_column(sa.Column("callback_url", sa.Text(), nullable=True))
    op.execute(
        jobs.update()
        .where(jobs.c.shot_id.is_not(None))
        .values(subject_type="shot", subject_id=sa.cast(jobs.c.shot_id, sa.String))
    )
    op.execute(
        jobs.update()
        .where(jobs.c.shot_id.is_(None), jobs.c.cut_version_id.is_not(None))
        .values(subject_type="cut", subject_id=sa.cast(jobs.c.cut_version_id, sa.String))
    )
    with op.batch_alter_table("mp_jobs", schema=None) as batch_op:
        # The default only filled the existing rows; new ones get theirs from the application.
        batch_op.alter_column("source", server_default=None)
        batch_op.drop_index("ix_mp_jobs_cut_version_id")
        batch_op.drop_constraint(CUT_FK, type_="foreignkey")
        batch_op.drop_constraint(SHOT_FK, type_="foreignkey")
        batch_op.drop_column("cut_version_id")
        batch_op.drop_column("shot_id")
        batch_op.create_index("ix_mp_jobs_subject", ["subject_type", "subject_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mp_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cut_version_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("shot_id", sa.Integer(), nullable=True))
    # A shot job's cut is its shot's; a deleted shot leaves both null, as 0002's SET NULL did.
    op.execute(sa.text("UPDATE mp_jobs SET cut_version_id = CAST(subject_id AS INTEGER) WHERE subject_type = 'cut'"))
    op.execute(
        sa.text(
            "UPDATE mp_jobs SET shot_id = s.id, cut_version_id = s.cut_version_id FROM mp_shots s "
            "WHERE mp_jobs.subject_type = 'shot' AND s.id = CAST(mp_jobs.subject_id AS INTEGER)"
        )
    )
    with op.batch_alter_table("mp_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_mp_jobs_subject")
        batch_op.drop_column("callback_url")
        batch_op.drop_column("source")
        batch_op.drop_column("subject_id")
        batch_op.drop_column("subject_type")
        batch_op.create_foreign_key(CUT_FK, "mp_cut_versions", ["cut_version_id"], ["id"])
        batch_op.create_foreign_key(SHOT_FK, "mp_shots", ["shot_id"], ["id"], ondelete="SET NULL")
        batch_op.create_index("ix_mp_jobs_cut_version_id", ["cut_version_id"], unique=False)
