"""Retention: personal data older than the policy is deleted (UK GDPR storage limitation).

A question counts from its last change, so a question answered late is kept for the whole
period after its answer. Its answers, "me too" support, FAQ feedback and its link to an FAQ
entry (a confirmed phrasing holds its text) go with it. Finished
outbox jobs (their payloads hold addresses and question text), the inbound mail log and
people (roster look-ups) no remaining question refers to are purged by their own dates. The
audit log of moderators' and hosts' actions has its own, longer, period.

Children are deleted by explicit statements rather than left to the foreign keys' ON DELETE
actions, so each table's count is known and the purge does not depend on SQLite's
`foreign_keys` pragma. Rows that only point at a question (a duplicate, a mail record, an FAQ
entry made from it) stay, without the link.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, and_, delete, exists, func, not_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from store.outbox import DONE, FAILED
from store.schema import (
    answers,
    audit_log,
    faq_entries,
    faq_feedback,
    faq_phrasings,
    inbound_mail,
    outbox,
    people,
    question_support,
    questions,
)

#: Every table the purge touches, in the order the CLI prints them.
PURGED_TABLES = (
    "questions",
    "answers",
    "question_support",
    "faq_feedback",
    "faq_phrasings",
    "inbound_mail",
    "outbox",
    "people",
    "audit_log",
)

#: Columns pointing at a question from rows that outlive it (each ON DELETE SET NULL).
QUESTION_LINKS: tuple[Column[Any], ...] = (
    questions.c.merged_into,
    inbound_mail.c.question_id,
    faq_entries.c.question_id,
)

#: Names the purge among PostgreSQL advisory locks (any constant unique to this product).
PURGE_LOCK_KEY = 7_140_365


def no_rows() -> dict[str, int]:
    return dict.fromkeys(PURGED_TABLES, 0)


class RetentionRepo:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock(self) -> bool:
        """Take the purge lock for this transaction; False if another instance holds it.

        On PostgreSQL two instances purging at once would lock the same rows in different
        orders (a deadlock aborts one), so the second simply skips its turn. On SQLite every
        transaction already holds the write lock (BEGIN IMMEDIATE).
        """
        if self._conn.dialect.name != "postgresql":
            return True
        taken = await self._conn.execute(select(func.pg_try_advisory_xact_lock(PURGE_LOCK_KEY)))
        return bool(taken.scalar())

    async def count_expired(self, cutoff: datetime, audit_cutoff: datetime) -> dict[str, int]:
        """What `purge_questions` and `purge_rest` would remove now (for `purge --dry-run`)."""
        old = select(questions.c.id).where(_question_expired(cutoff)).scalar_subquery()
        where: dict[str, tuple[Any, ColumnElement[bool]]] = {
            "questions": (questions, _question_expired(cutoff)),
            "answers": (answers, answers.c.question_id.in_(old)),
            "question_support": (question_support, question_support.c.question_id.in_(old)),
            "faq_feedback": (faq_feedback, faq_feedback.c.question_id.in_(old)),
            "faq_phrasings": (faq_phrasings, faq_phrasings.c.question_id.in_(old)),
            "inbound_mail": (inbound_mail, inbound_mail.c.created_at < cutoff),
            "outbox": (outbox, _outbox_finished(cutoff)),
            "people": (people, _person_forgotten(cutoff)),
            "audit_log": (audit_log, audit_log.c.at < audit_cutoff),
        }
        counts = no_rows()
        for name, (table, condition) in where.items():
            statement = select(func.count()).select_from(table).where(condition)
            counts[name] = (await self._conn.execute(statement)).scalar_one()
        return counts

    async def purge_questions(self, cutoff: datetime, *, limit: int) -> dict[str, int]:
        """Delete up to `limit` expired questions with their answers, support and feedback."""
        counts = no_rows()
        ids = list(
            (
                await self._conn.execute(
                    select(questions.c.id)
                    .where(_question_expired(cutoff))
                    .order_by(questions.c.id)
                    .limit(limit)
                )
            ).scalars()
        )
        if not ids:
            return counts
        for name, table in (
            ("answers", answers),
            ("question_support", question_support),
            ("faq_feedback", faq_feedback),
            ("faq_phrasings", faq_phrasings),
        ):
            result = await self._conn.execute(delete(table).where(table.c.question_id.in_(ids)))
            counts[name] = result.rowcount
        await unlink_questions(self._conn, ids)
        result = await self._conn.execute(delete(questions).where(questions.c.id.in_(ids)))
        counts["questions"] = result.rowcount
        return counts

    async def purge_rest(self, cutoff: datetime, audit_cutoff: datetime) -> dict[str, int]:
        """Delete expired inbound-mail records, finished jobs, unreferenced people, old audit."""
        counts = no_rows()
        for name, table, condition in (
            ("inbound_mail", inbound_mail, inbound_mail.c.created_at < cutoff),
            ("outbox", outbox, _outbox_finished(cutoff)),
            ("people", people, _person_forgotten(cutoff)),
            ("audit_log", audit_log, audit_log.c.at < audit_cutoff),
        ):
            counts[name] = (await self._conn.execute(delete(table).where(condition))).rowcount
        return counts


async def unlink_questions(conn: AsyncConnection, ids: list[int]) -> None:
    """Clear the links to questions about to be deleted (purged or erased), as their foreign
    keys would, whatever SQLite's `foreign_keys` pragma says."""
    for column in QUESTION_LINKS:
        await conn.execute(update(column.table).where(column.in_(ids)).values({column.name: None}))


def _question_expired(cutoff: datetime) -> ColumnElement[bool]:
    return questions.c.updated_at < cutoff


def _outbox_finished(cutoff: datetime) -> ColumnElement[bool]:
    """Only jobs that will never run again: a pending job is work still owed to someone."""
    return and_(outbox.c.status.in_([DONE, FAILED]), outbox.c.updated_at < cutoff)


def _person_forgotten(cutoff: datetime) -> ColumnElement[bool]:
    """Not looked up within the period, and no question that is kept names them."""
    kept_question = (
        select(questions.c.id)
        .where(questions.c.asker_aad_id == people.c.aad_id)
        .where(not_(_question_expired(cutoff)))
    )
    return and_(people.c.updated_at < cutoff, not_(exists(kept_question)))
