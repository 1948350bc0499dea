"""Live events, roles and the people cache: the data behind hosts' and moderators' work."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clock import Clock
from domain.states import QuestionStatus
from store.dialect import insert_ignoring_duplicates, upsert
from store.records import MAX_ROW_ID, AuditEntry, Event
from store.schema import audit_log, events, people, question_support, questions, roles


class EventRepo:
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock
        # Read once per transaction: questions committed together (Store.grouped) each ask.
        self._open_events: list[Event] | None = None

    async def _change(self, statement: Any) -> Any:
        """Every write to events goes through here, so the open events are read afresh."""
        self._open_events = None
        return await self._conn.execute(statement)

    async def open(
        self, title: str, *, description: str | None, ends_at: datetime | None, by: str,
        source_key: str | None = None,
    ) -> tuple[int, bool]:
        """(event id, True if this call opened it). A `source_key` seen before returns the event
        it opened then and opens nothing."""
        values = {"title": title, "description": description, "status": "open", "opened_by": by,
                  "opened_at": self._clock.now(), "ends_at": ends_at, "source_key": source_key}
        statement = (insert_ignoring_duplicates(self._conn, events, values, "source_key")
                     if source_key else events.insert().values(**values))
        opened = (await self._change(statement.returning(events.c.id))).scalar()
        if opened is not None:
            return opened, True
        earlier = await self._conn.execute(select(events.c.id).where(events.c.source_key == source_key))
        return earlier.scalar_one(), False

    async def close(self, event_id: int) -> bool:
        """Close once; True if this call closed it."""
        result = await self._change(
            update(events).where(events.c.id == event_id, events.c.status == "open")
            .values(status="closed", closed_at=self._clock.now())
        )
        return result.rowcount == 1

    async def get(self, event_id: int) -> Event | None:
        if not 0 < event_id <= MAX_ROW_ID:
            return None  # "close event E-99999999999" names no event
        row = (await self._conn.execute(select(events).where(events.c.id == event_id))).first()
        return _event(row._mapping) if row else None

    async def open_events(self) -> list[Event]:
        if self._open_events is None:
            rows = await self._conn.execute(_OPEN_EVENTS)  # built once: every question asks
            self._open_events = [_event(row._mapping) for row in rows]
        return list(self._open_events)

    async def all(self) -> list[Event]:
        rows = await self._conn.execute(select(events).order_by(events.c.id))
        return [_event(row._mapping) for row in rows]

    async def by_meeting(self, meeting_id: str) -> Event | None:
        row = (await self._conn.execute(select(events).where(events.c.meeting_id == meeting_id))).first()
        return _event(row._mapping) if row else None

    async def link_meeting(self, event_id: int, meeting_id: str) -> None:
        """A meeting's chat belongs to its newest event: a recurring meeting keeps one id, so
        the link moves from last week's event to this one (meeting_id is unique)."""
        await self._change(update(events).where(events.c.meeting_id == meeting_id).values(meeting_id=None))
        await self._change(update(events).where(events.c.id == event_id).values(meeting_id=meeting_id))

    async def set_board(self, event_id: int, address: dict[str, Any], card_id: str | None) -> None:
        await self._change(
            update(events).where(events.c.id == event_id)
            .values(board_address=json.dumps(address), board_card_id=card_id)
        )

    async def set_board_card(self, event_id: int, card_id: str) -> None:
        await self._change(update(events).where(events.c.id == event_id).values(board_card_id=card_id))

    async def tallies(self, event_id: int) -> dict[QuestionStatus, int]:
        """Questions of the event per status (private ones included: counts reveal nobody)."""
        rows = await self._conn.execute(
            select(questions.c.status, func.count()).where(questions.c.event_id == event_id)
            .group_by(questions.c.status)
        )
        return {QuestionStatus(status): count for status, count in rows}


class RoleRepo:
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    async def grant(self, principal: str, role: str, *, by: str) -> bool:
        values = {"principal": principal.lower(), "role": role, "granted_by": by, "granted_at": self._clock.now()}
        statement = insert_ignoring_duplicates(self._conn, roles, values, ["principal", "role"])
        return (await self._conn.execute(statement.returning(roles.c.role))).scalar() is not None

    async def revoke(self, principal: str, role: str) -> bool:
        result = await self._conn.execute(
            delete(roles).where(roles.c.principal == principal.lower(), roles.c.role == role)
        )
        return result.rowcount == 1

    async def roles_of(self, principals: Iterable[str]) -> set[str]:
        names = [p.lower() for p in principals if p]
        if not names:
            return set()
        rows = await self._conn.execute(select(roles.c.role).where(roles.c.principal.in_(names)))
        return {role for (role,) in rows}

    async def all(self) -> list[tuple[str, str, str]]:
        rows = await self._conn.execute(
            select(roles.c.principal, roles.c.role, roles.c.granted_by).order_by(roles.c.role, roles.c.principal)
        )
        return [(row.principal, row.role, row.granted_by) for row in rows]


class PeopleRepo:
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    async def remember(self, aad_id: str, *, email: str | None, name: str | None) -> None:
        values = {"aad_id": aad_id, "email": email.lower() if email else None, "name": name,
                  "updated_at": self._clock.now()}
        await self._conn.execute(upsert(self._conn, people, values, "aad_id"))

    async def email_of(self, aad_id: str) -> str | None:
        return (await self._conn.execute(select(people.c.email).where(people.c.aad_id == aad_id))).scalar()


class SupportRepo:
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    async def add(self, question_id: int, supporter: str, address: dict[str, Any] | None = None) -> bool:
        """One "me too" per colleague per question; raises the question's count once."""
        values = {"question_id": question_id, "supporter": supporter, "created_at": self._clock.now(),
                  "address": json.dumps(address) if address else None}
        statement = insert_ignoring_duplicates(self._conn, question_support, values, ["question_id", "supporter"])
        added = (await self._conn.execute(statement.returning(question_support.c.question_id))).scalar() is not None
        if added:
            await self._conn.execute(
                update(questions).where(questions.c.id == question_id).values(support=questions.c.support + 1)
            )
        return added


    async def to_tell(self, question_ids: list[int]) -> list[tuple[str, dict[str, Any]]]:
        """(supporter, address) of everyone who supported these questions and can be told, oldest first."""
        rows = await self._conn.execute(
            select(question_support.c.supporter, question_support.c.address)
            .where(question_support.c.question_id.in_(question_ids), question_support.c.address.is_not(None))
            .order_by(question_support.c.created_at)
        )
        return [(row.supporter, json.loads(row.address)) for row in rows]


class AuditRepo:
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    async def record(self, actor: str, action: str, target: str, detail: str | None = None) -> None:
        await self._conn.execute(
            audit_log.insert().values(at=self._clock.now(), actor=actor, action=action, target=target, detail=detail)
        )

    async def find(self, action: str, target: str) -> list[AuditEntry]:
        """What was recorded for one action on one target, oldest first (to act once only)."""
        rows = await self._conn.execute(
            select(audit_log).where(audit_log.c.action == action, audit_log.c.target == target)
            .order_by(audit_log.c.id)
        )
        return [AuditEntry(id=r.id, at=r.at, actor=r.actor, action=r.action, target=r.target, detail=r.detail)
                for r in rows]


def _event(row: Any) -> Event:
    return Event(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        status=row["status"],
        opened_by=row["opened_by"],
        opened_at=row["opened_at"],
        ends_at=row["ends_at"],
        closed_at=row["closed_at"],
        meeting_id=row["meeting_id"],
        board_address=json.loads(row["board_address"]) if row["board_address"] else None,
        board_card_id=row["board_card_id"],
    )


_OPEN_EVENTS = select(events).where(events.c.status == "open").order_by(events.c.id)
