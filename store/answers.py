"""Moderators' answers, and the inbound mail log that makes reading a mailbox idempotent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from clock import Clock
from store.dialect import insert_ignoring_duplicates, upsert
from store.records import Answer
from store.schema import answers, inbound_mail, questions, service_state


class AnswerRepo:
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    async def add(
        self, question_id: int, *, text: str, author: str, author_name: str | None, via: str, source_key: str
    ) -> int | None:
        """Store an answer; None if this source (a mail, a card action) was already recorded."""
        values = {
            "question_id": question_id,
            "text": text,
            "author": author,
            "author_name": author_name,
            "via": via,
            "source_key": source_key,
            "created_at": self._clock.now(),
        }
        statement = insert_ignoring_duplicates(self._conn, answers, values, "source_key")
        return (await self._conn.execute(statement.returning(answers.c.id))).scalar()

    async def for_question(self, question_id: int) -> list[Answer]:
        rows = await self._conn.execute(
            select(answers).where(answers.c.question_id == question_id).order_by(answers.c.id)
        )
        return [
            Answer(id=r.id, question_id=r.question_id, text=r.text, author=r.author,
                   author_name=r.author_name, via=r.via, created_at=r.created_at)
            for r in rows
        ]

    async def of_event(self, event_id: int) -> dict[int, list[Answer]]:
        """Every answer to the event's questions, by question id, oldest first (one query)."""
        rows = await self._conn.execute(
            select(answers).join(questions, questions.c.id == answers.c.question_id)
            .where(questions.c.event_id == event_id).order_by(answers.c.id)
        )
        found: dict[int, list[Answer]] = {}
        for r in rows:
            found.setdefault(r.question_id, []).append(
                Answer(id=r.id, question_id=r.question_id, text=r.text, author=r.author,
                       author_name=r.author_name, via=r.via, created_at=r.created_at)
            )
        return found

    async def count(self) -> int:
        return (await self._conn.execute(select(func.count()).select_from(answers))).scalar_one()


class InboundMailRepo:
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    async def seen(self, internet_message_id: str) -> bool:
        row = await self._conn.execute(
            select(inbound_mail.c.id).where(inbound_mail.c.internet_message_id == internet_message_id)
        )
        return row.first() is not None

    async def outcome_of(self, internet_message_id: str) -> tuple[str, str | None, int | None] | None:
        """(outcome, detail, question id) recorded for a mail, or None if it was never read."""
        row = (
            await self._conn.execute(
                select(inbound_mail.c.outcome, inbound_mail.c.detail, inbound_mail.c.question_id)
                .where(inbound_mail.c.internet_message_id == internet_message_id)
            )
        ).first()
        return (row.outcome, row.detail, row.question_id) if row else None

    async def record(
        self,
        internet_message_id: str,
        *,
        sender: str,
        outcome: str,
        detail: str | None,
        question_id: int | None,
        received_at: datetime,
    ) -> bool:
        """Log what was done with a mail; False if it had been handled before."""
        values = {
            "internet_message_id": internet_message_id,
            "sender": sender,
            "outcome": outcome,
            "detail": detail,
            "question_id": question_id,
            "received_at": received_at,
            "created_at": self._clock.now(),
        }
        statement = insert_ignoring_duplicates(self._conn, inbound_mail, values, "internet_message_id")
        return (await self._conn.execute(statement.returning(inbound_mail.c.id))).scalar() is not None


class StateRepo:
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock
        # Read once per transaction: triage asks for the moderators' channel per question.
        self._read: dict[str, str | None] = {}

    async def get(self, name: str) -> str | None:
        if name not in self._read:
            row = await self._conn.execute(select(service_state.c.value).where(service_state.c.name == name))
            self._read[name] = row.scalar()
        return self._read[name]

    async def put(self, name: str, value: str) -> None:
        self._read[name] = value
        await self._conn.execute(
            upsert(self._conn, service_state, {"name": name, "value": value, "updated_at": self._clock.now()}, "name")
        )
