"""Questions: recorded once per delivery, then moved through their states by conditional updates."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clock import Clock
from domain.states import OPEN_STATES, QuestionStatus
from store.dialect import insert_ignoring_duplicates, insert_new
from store.records import MAX_ROW_ID, NewQuestion, Question
from store.schema import faq_feedback, questions


class QuestionRepo:
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    async def add(self, new: NewQuestion) -> int | None:
        """Insert; None when this delivery was recorded before (a redelivered activity)."""
        now = self._clock.now()
        values: dict[str, Any] = {
            "dedupe_key": new.dedupe_key,
            "source": new.source,
            "text": new.text,
            "status": QuestionStatus.RECEIVED.value,
            "asker_id": new.asker_id,
            "asker_aad_id": new.asker_aad_id,
            "asker_name": new.asker_name,
            "asker_email": new.asker_email,
            "conversation_id": new.conversation_id,
            "conversation_type": new.conversation_type,
            "address": json.dumps(new.address) if new.address is not None else None,
            "reply_to_id": new.reply_to_id,
            "event_id": new.event_id,
            "anonymous": new.anonymous,
            "created_at": now,
            "updated_at": now,
        }
        return await insert_new(self._conn, questions, values, "dedupe_key", returning="id")

    async def get(self, question_id: int) -> Question | None:
        if not 0 < question_id <= MAX_ROW_ID:
            return None  # a number from input that cannot be an id
        row = (await self._conn.execute(_BY_ID, {"question_id": question_id})).first()
        return _question(row._mapping) if row else None

    async def get_many(self, question_ids: Iterable[int]) -> list[Question]:
        """The questions that exist among `question_ids`, in id order."""
        ids = [question_id for question_id in question_ids if 0 < question_id <= MAX_ROW_ID]
        if not ids:
            return []
        rows = await self._conn.execute(_BY_IDS, {"ids": ids})
        return [_question(row._mapping) for row in rows]

    async def lock(self, question_id: int) -> Question | None:
        """Read the question and hold its row until the transaction ends (PostgreSQL
        FOR UPDATE; SQLite transactions already hold the write lock), so a check-then-write
        on it, such as recording a verdict once, cannot interleave with another."""
        if not 0 < question_id <= MAX_ROW_ID:
            return None
        row = (
            await self._conn.execute(
                select(questions).where(questions.c.id == question_id).with_for_update()
            )
        ).first()
        return _question(row._mapping) if row else None

    async def by_forward_message_id(self, message_ids: Iterable[str]) -> Question | None:
        """The question whose forward mail is one of `message_ids` (a reply's References)."""
        ids = [message_id for message_id in message_ids if message_id]
        if not ids:
            return None
        row = (
            await self._conn.execute(
                select(questions).where(questions.c.forward_message_id.in_(ids)).order_by(questions.c.id)
            )
        ).first()
        return _question(row._mapping) if row else None

    async def move(
        self,
        question_id: int,
        *,
        to: QuestionStatus,
        only_from: Iterable[QuestionStatus],
        **changes: Any,
    ) -> bool:
        """Change state only if the question is still in one of `only_from`; True if it moved.

        The condition in the UPDATE is what makes a double-click, a redelivered card submit or
        two workers racing on one question take effect once.
        """
        statement = _move_statement(tuple(sorted(changes)))
        parameters = _update_parameters(question_id, changes, self._clock.now())
        parameters.update(only_from=[status.value for status in only_from], new_status=to.value)
        return (await self._conn.execute(statement, parameters)).rowcount == 1

    async def set_forward_message_id(
        self, question_id: int, message_id: str, *, contact: tuple[str | None, str | None] | None = None
    ) -> None:
        """Record the forwarded mail's id and, when the roster gave them, the asker's
        `contact` (name, email), in one statement."""
        changes: dict[str, Any] = {"forward_message_id": message_id}
        if contact is not None:
            changes.update(asker_name=contact[0], asker_email=contact[1])
        await self._conn.execute(
            _update_statement(tuple(sorted(changes))), _update_parameters(question_id, changes, self._clock.now())
        )

    async def add_feedback(self, question_id: int, entry_id: str, *, helpful: bool) -> bool:
        """One verdict per answered question; a second click records nothing."""
        statement = insert_ignoring_duplicates(
            self._conn,
            faq_feedback,
            {
                "question_id": question_id,
                "entry_id": entry_id,
                "helpful": helpful,
                "created_at": self._clock.now(),
            },
            "question_id",
        )
        return (await self._conn.execute(statement.returning(faq_feedback.c.id))).scalar() is not None


    async def merged_into(self, question_id: int) -> list[Question]:
        """Duplicates merged into this question: each of their askers gets its answer."""
        rows = await self._conn.execute(
            select(questions).where(questions.c.merged_into == question_id).order_by(questions.c.id)
        )
        return [_question(row._mapping) for row in rows]

    async def of_event(self, event_id: int) -> list[Question]:
        rows = await self._conn.execute(
            select(questions).where(questions.c.event_id == event_id).order_by(questions.c.id)
        )
        return [_question(row._mapping) for row in rows]

    async def of_asker(self, asker_id: str, asker_aad_id: str | None, *, limit: int = 10) -> list[Question]:
        """A colleague's own questions, newest first ("my questions")."""
        who = questions.c.asker_aad_id == asker_aad_id if asker_aad_id else questions.c.asker_id == asker_id
        rows = await self._conn.execute(select(questions).where(who).order_by(questions.c.id.desc()).limit(limit))
        return [_question(row._mapping) for row in rows]

    async def asked_before(self, asker_id: str, asker_aad_id: str | None, question_id: int) -> bool:
        """Whether this colleague has a question older than `question_id` (a new asker is told
        what is kept about them)."""
        who = questions.c.asker_aad_id == asker_aad_id if asker_aad_id else questions.c.asker_id == asker_id
        row = await self._conn.execute(select(questions.c.id).where(who, questions.c.id < question_id).limit(1))
        return row.first() is not None

    async def newest_of_event(self, event_id: int, *, limit: int) -> list[Question]:
        rows = await self._conn.execute(
            select(questions)
            .where(questions.c.event_id == event_id, questions.c.private.is_(False))
            .order_by(questions.c.id.desc())
            .limit(limit)
        )
        return [_question(row._mapping) for row in rows]

    async def most_supported_of_event(self, event_id: int, *, limit: int) -> list[Question]:
        rows = await self._conn.execute(
            select(questions)
            .where(questions.c.event_id == event_id, questions.c.private.is_(False), questions.c.support > 0)
            .order_by(questions.c.support.desc(), questions.c.id)
            .limit(limit)
        )
        return [_question(row._mapping) for row in rows]

    async def waiting_since(self, before: datetime, *, limit: int) -> list[Question]:
        """Questions with the moderators (open states: forwarded or claimed) asked before `before`,
        oldest first."""
        rows = await self._conn.execute(
            select(questions)
            .where(
                questions.c.status.in_([state.value for state in OPEN_STATES]),
                questions.c.created_at < before,
            )
            .order_by(questions.c.created_at, questions.c.id)
            .limit(limit)
        )
        return [_question(row._mapping) for row in rows]

    async def set_fields(self, question_id: int, **changes: Any) -> None:
        """Change descriptive fields (card id, privacy, topic); never the state."""
        assert "status" not in changes, "use move() to change state"
        await self._conn.execute(
            update(questions).where(questions.c.id == question_id).values(updated_at=self._clock.now(), **changes)
        )

    async def counts(self) -> dict[QuestionStatus, int]:
        """Questions per state held (for /metrics); a state this version does not know is an
        error naming it, as wherever a question is read."""
        rows = await self._conn.execute(select(questions.c.status, func.count()).group_by(questions.c.status))
        return {QuestionStatus(status): count for status, count in rows}

    async def mailed_count(self) -> int:
        """How many questions were forwarded to the moderators by mail (for /metrics)."""
        forwarded = await self._conn.execute(
            select(func.count()).select_from(questions).where(questions.c.forward_message_id.is_not(None))
        )
        return int(forwarded.scalar_one())


# The statements every question runs, built once (see store.dialect.insert_new for why).
_BY_ID = select(questions).where(questions.c.id == bindparam("question_id"))
_BY_IDS = select(questions).where(questions.c.id.in_(bindparam("ids", expanding=True))).order_by(questions.c.id)


@cache
def _update_statement(columns: tuple[str, ...]) -> Any:
    """UPDATE questions SET <columns>, updated_at WHERE id = :question_id; the new values are
    parameters named new_<column> (SQLAlchemy keeps the bare column names for itself)."""
    values: dict[str, Any] = {column: bindparam(f"new_{column}") for column in columns}
    return (
        update(questions)
        .where(questions.c.id == bindparam("question_id"))
        .values(updated_at=bindparam("new_updated_at"), **values)
    )


def _update_parameters(question_id: int, changes: dict[str, Any], now: datetime) -> dict[str, Any]:
    parameters = {f"new_{column}": value for column, value in changes.items()}
    parameters.update(question_id=question_id, new_updated_at=now)
    return parameters


@cache
def _move_statement(columns: tuple[str, ...]) -> Any:
    """The conditional state move of `move`: to :new_status only while the status is in :only_from."""
    return (
        _update_statement(columns)
        .where(questions.c.status.in_(bindparam("only_from", expanding=True)))
        .values(status=bindparam("new_status"))
    )


def _question(row: Any) -> Question:
    return Question(
        id=row["id"],
        source=row["source"],
        text=row["text"],
        status=QuestionStatus(row["status"]),
        asker_id=row["asker_id"],
        asker_aad_id=row["asker_aad_id"],
        asker_name=row["asker_name"],
        asker_email=row["asker_email"],
        conversation_id=row["conversation_id"],
        conversation_type=row["conversation_type"],
        address=json.loads(row["address"]) if row["address"] else None,
        reply_to_id=row["reply_to_id"],
        faq_entry_id=row["faq_entry_id"],
        faq_score=row["faq_score"],
        forward_message_id=row["forward_message_id"],
        created_at=row["created_at"],
        event_id=row["event_id"],
        anonymous=bool(row["anonymous"]),
        private=bool(row["private"]),
        support=row["support"],
        topic=row["topic"],
        claimed_by=row["claimed_by"],
        acted_by=row["acted_by"],
        dismissed_reason=row["dismissed_reason"],
        merged_into=row["merged_into"],
        moderation_card_id=row["moderation_card_id"],
    )
