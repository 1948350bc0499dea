"""faq_phrasings: questions a moderator linked to the FAQ entry that answers them

The matcher takes each linked question's text as one more phrasing of its entry. One link per
question; the row is deleted with its question.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "faq_phrasings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.String(length=128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("linked_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["questions.id"],
            name=op.f("fk_faq_phrasings_question_id_questions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faq_phrasings")),
    )
    op.create_index("ix_faq_phrasings_question_id", "faq_phrasings", ["question_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_faq_phrasings_question_id", table_name="faq_phrasings")
    op.drop_table("faq_phrasings")
