"""mp_compositions and mp_composition_segments: generated multi-segment videos

Revision ID: 0007
Revises: 0006

A composition has an exact rate and a size; its segments are ordered by `position` (no unique
constraint: a reorder rewrites every position in one transaction) and deleted with it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mp_compositions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rate", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("soundtrack", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mp_compositions"),
    )
    op.create_table(
        "mp_composition_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("composition_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("generator", sa.String(length=100), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("negative_prompt", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.String(length=32), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("transition", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["composition_id"],
            ["mp_compositions.id"],
            name="fk_mp_composition_segments_composition_id_mp_compositions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mp_composition_segments"),
    )
    op.create_index("ix_mp_composition_segments_composition_id", "mp_composition_segments", ["composition_id"])


def downgrade() -> None:
    op.drop_index("ix_mp_composition_segments_composition_id", table_name="mp_composition_segments")
    op.drop_table("mp_composition_segments")
    op.drop_table("mp_compositions")
