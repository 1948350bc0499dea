"""events, roles, people, support, audit log; moderation columns on questions

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_by", sa.String(length=320), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("meeting_id", sa.String(length=512), nullable=True),
        sa.Column("board_address", sa.Text(), nullable=True),
        sa.Column("board_card_id", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("meeting_id", name=op.f("uq_events_meeting_id")),
    )
    op.create_table(
        "roles",
        sa.Column("principal", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("granted_by", sa.String(length=320), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("principal", "role", name=op.f("pk_roles")),
    )
    op.create_table(
        "people",
        sa.Column("aad_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("aad_id", name=op.f("pk_people")),
    )
    op.create_index("ix_people_email", "people", ["email"])
    op.create_table(
        "question_support",
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("supporter", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"], ["questions.id"], name=op.f("fk_question_support_question_id_questions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("question_id", "supporter", name=op.f("pk_question_support")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("event_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("anonymous", sa.Boolean(), server_default="0", nullable=False))
        batch.add_column(sa.Column("private", sa.Boolean(), server_default="0", nullable=False))
        batch.add_column(sa.Column("support", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("topic", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("acted_by", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("dismissed_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("merged_into", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("moderation_card_id", sa.String(length=256), nullable=True))
        batch.create_foreign_key(
            op.f("fk_questions_event_id_events"), "events", ["event_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key(
            op.f("fk_questions_merged_into_questions"), "questions", ["merged_into"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_questions_event_id", ["event_id"])


def downgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.drop_index("ix_questions_event_id")
        batch.drop_constraint(op.f("fk_questions_merged_into_questions"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_questions_event_id_events"), type_="foreignkey")
        for column in ("moderation_card_id", "merged_into", "dismissed_reason", "acted_by", "claimed_by",
                       "topic", "support", "private", "anonymous", "event_id"):
            batch.drop_column(column)
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("question_support")
    op.drop_index("ix_people_email", table_name="people")
    op.drop_table("people")
    op.drop_table("roles")
    op.drop_table("events")
