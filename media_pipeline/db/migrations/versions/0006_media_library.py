"""The media library: items stored once by sha-256, derivatives with lineage, workflows and their runs

Revision ID: 0006
Revises: 0005

`mp_media` holds every library item (uploads and edit outputs; `sha256` unique: nothing is stored
twice); `mp_media_derivatives` what each edit read and its canonical recipe, unique on (source
sha-256, recipe sha-256) so the same edit renders once; `mp_workflows` saved edit chains and
`mp_workflow_runs` their executions (each one job).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "mp_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("container", sa.String(length=100), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("codec", sa.String(length=40), nullable=True),
        sa.Column("rate", sa.String(length=32), nullable=True),
        sa.Column("frame_count", sa.Integer(), nullable=True),
        sa.Column("duration", sa.String(length=40), nullable=True),
        sa.Column("has_audio", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_mp_media"),
        sa.UniqueConstraint("sha256", name="uq_mp_media_sha256"),
    )
    op.create_index("ix_mp_media_type", "mp_media", ["type"])
    op.create_table(
        "mp_media_derivatives",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("recipe_sha256", sa.String(length=64), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["mp_media.id"], name="fk_mp_media_derivatives_source_id_mp_media", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["media_id"], ["mp_media.id"], name="fk_mp_media_derivatives_media_id_mp_media", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mp_media_derivatives"),
        sa.UniqueConstraint("source_sha256", "recipe_sha256", name="uq_mp_media_derivatives_recipe"),
    )
    op.create_index("ix_mp_media_derivatives_source_id", "mp_media_derivatives", ["source_id"])
    op.create_index("ix_mp_media_derivatives_media_id", "mp_media_derivatives", ["media_id"])
    op.create_index("ix_mp_media_derivatives_run_id", "mp_media_derivatives", ["run_id"])
    op.create_table(
        "mp_workflows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_mp_workflows"),
    )
    op.create_table(
        "mp_workflow_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["mp_workflows.id"],
            name="fk_mp_workflow_runs_workflow_id_mp_workflows",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["media_id"], ["mp_media.id"], name="fk_mp_workflow_runs_media_id_mp_media", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mp_workflow_runs"),
    )
    op.create_index("ix_mp_workflow_runs_workflow_id", "mp_workflow_runs", ["workflow_id"])
    op.create_index("ix_mp_workflow_runs_job_id", "mp_workflow_runs", ["job_id"])


def downgrade() -> None:
    op.drop_table("mp_workflow_runs")
    op.drop_table("mp_workflows")
    op.drop_table("mp_media_derivatives")
    op.drop_index("ix_mp_media_type", table_name="mp_media")
    op.drop_table("mp_media")
