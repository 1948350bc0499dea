"""What the FAQ matcher learns from use: moderators' FAQ entries and labelled questions.

Two sources of labels already live in other tables and are read here, not copied:
- the asker's verdict on an FAQ answer (`faq_feedback`: "Yes" or "No, send it to the team");
- a moderator's answer to a question the FAQ did not answer (`answers`), which says what the
  right answer was, so it can be compared with the entries that nearly matched.
Entries moderators add ("add to FAQ" on the moderation card) are stored in `faq_entries`;
questions they link to the entry that answers them (`cli.py faq link`) in `faq_phrasings`.
The live matcher takes both, and the "No" verdicts as texts never to answer with that entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from clock import Clock
from domain.states import QuestionStatus
from store.dialect import insert_ignoring_duplicates
from store.schema import answers, faq_entries, faq_feedback, faq_phrasings, questions

# States in which a question tells the matcher something (domain.states: learnable)
LEARNING_STATES = [state.value for state in QuestionStatus if state.properties.learnable]


@dataclass(frozen=True)
class StoredEntry:
    id: str
    question: str
    alternates: tuple[str, ...]
    answer: str
    question_id: int | None
    created_by: str
    created_at: datetime
    topic: str | None = None


@dataclass(frozen=True)
class Use:
    """One question and what happened to it, as far as the FAQ is concerned."""

    question_id: int
    text: str
    status: QuestionStatus
    faq_entry_id: str | None  # the entry the bot answered with (kept after a "No")
    helpful: bool | None  # the asker's verdict on that answer, if given
    moderator_answer: str | None  # the latest moderator answer, if any

    @property
    def ref(self) -> str:
        return f"Q-{self.question_id}"


class FaqRepo:
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    async def entries(self) -> list[StoredEntry]:
        """Moderators' entries, oldest first (the order they are appended to the FAQ)."""
        rows = await self._conn.execute(
            select(faq_entries).order_by(faq_entries.c.created_at, faq_entries.c.id)
        )
        return [
            StoredEntry(
                id=row.id,
                question=row.question,
                alternates=tuple(json.loads(row.alternates)),
                answer=row.answer,
                question_id=row.question_id,
                created_by=row.created_by,
                created_at=row.created_at,
                topic=row.topic,
            )
            for row in rows
        ]

    async def add_entry(
        self,
        entry_id: str,
        *,
        question: str,
        alternates: tuple[str, ...] = (),
        answer: str,
        question_id: int | None,
        created_by: str,
        topic: str | None = None,
    ) -> bool:
        """False when an entry with this id exists already (a repeated card submission)."""
        values = {
            "id": entry_id,
            "question": question,
            "alternates": json.dumps(list(alternates)),
            "answer": answer,
            "question_id": question_id,
            "created_by": created_by,
            "created_at": self._clock.now(),
            "topic": topic,
        }
        return await self._insert_new(faq_entries, values, "id")

    async def _insert_new(self, table: Table, values: dict[str, Any], key: str) -> bool:
        """Insert the row unless one with the same `key` exists; whether it was inserted."""
        statement = insert_ignoring_duplicates(self._conn, table, values, key)
        added = await self._conn.execute(statement.returning(table.c[key]))
        return added.scalar() is not None

    async def entry_from_question(self, question_id: int) -> str | None:
        """The id of the entry made from this question, if one was."""
        return (
            await self._conn.execute(
                select(faq_entries.c.id).where(faq_entries.c.question_id == question_id).limit(1)
            )
        ).scalar()

    async def link(self, question_id: int, entry_id: str, *, text: str, linked_by: str) -> bool:
        """Store the question's text as a confirmed phrasing of the entry; False if this
        question was linked before (to this entry or another: the first link stands)."""
        values = {
            "question_id": question_id,
            "entry_id": entry_id,
            "text": text,
            "linked_by": linked_by,
            "created_at": self._clock.now(),
        }
        return await self._insert_new(faq_phrasings, values, "question_id")

    async def linked_entry(self, question_id: int) -> str | None:
        """The id of the entry a moderator linked this question to, if one did."""
        return (
            await self._conn.execute(
                select(faq_phrasings.c.entry_id).where(faq_phrasings.c.question_id == question_id)
            )
        ).scalar()

    async def phrasings(self) -> list[tuple[str, str]]:
        """(entry id, text) of every confirmed phrasing, oldest first."""
        rows = await self._conn.execute(
            select(faq_phrasings.c.entry_id, faq_phrasings.c.text).order_by(faq_phrasings.c.id)
        )
        return [(row.entry_id, row.text) for row in rows]

    async def negatives(self) -> list[tuple[str, str]]:
        """(entry id, question text) for every FAQ answer its asker said did not help."""
        rows = await self._conn.execute(
            select(faq_feedback.c.entry_id, questions.c.text)
            .join(questions, questions.c.id == faq_feedback.c.question_id)
            .where(faq_feedback.c.helpful.is_(False))
            .order_by(faq_feedback.c.id)
        )
        return [(row.entry_id, row.text) for row in rows]

    async def uses(self) -> list[Use]:
        """Every question the matcher can learn from, oldest first, with its verdict and answer."""
        latest = (
            select(answers.c.question_id, func.max(answers.c.id).label("answer_id"))
            .group_by(answers.c.question_id)
            .subquery()
        )
        statement = (
            select(
                questions.c.id,
                questions.c.text,
                questions.c.status,
                questions.c.faq_entry_id,
                faq_feedback.c.helpful,
                answers.c.text.label("answer"),
            )
            .select_from(questions)
            .outerjoin(faq_feedback, faq_feedback.c.question_id == questions.c.id)
            .outerjoin(latest, latest.c.question_id == questions.c.id)
            .outerjoin(answers, answers.c.id == latest.c.answer_id)
            .where(questions.c.status.in_(LEARNING_STATES))
            .order_by(questions.c.id)
        )
        return [
            Use(
                question_id=row.id,
                text=row.text,
                status=QuestionStatus(row.status),
                faq_entry_id=row.faq_entry_id,
                helpful=row.helpful,
                moderator_answer=row.answer,
            )
            for row in await self._conn.execute(statement)
        ]
