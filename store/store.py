"""The store service: units of work over one engine. Handlers see repositories, never SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.answers import AnswerRepo, InboundMailRepo, StateRepo
from store.events import AuditRepo, EventRepo, PeopleRepo, RoleRepo, SupportRepo
from store.faq_examples import FaqRepo
from store.outbox import OutboxRepo
from store.questions import QuestionRepo
from store.retention import RetentionRepo
from store.subjects import SubjectRepo


@dataclass(frozen=True)
class Unit:
    """One transaction's repositories: everything done through it commits or rolls back together."""

    questions: QuestionRepo
    outbox: OutboxRepo
    answers: AnswerRepo
    inbound_mail: InboundMailRepo
    state: StateRepo
    events: EventRepo
    roles: RoleRepo
    people: PeopleRepo
    support: SupportRepo
    audit: AuditRepo
    faq: FaqRepo
    retention: RetentionRepo
    subjects: SubjectRepo


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Called after a commit that enqueued outbox jobs, so a local worker starts at once.
        self.after_enqueue: Callable[[], None] | None = None

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        async with self.engine.begin() as conn:
            unit = _unit(conn)
            yield unit
        if unit.outbox.enqueued and self.after_enqueue is not None:
            self.after_enqueue()

    async def ping(self) -> bool:
        """True if the database answers a trivial query (for /healthz)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False
        return True


def _unit(conn: AsyncConnection) -> Unit:
    return Unit(
        questions=QuestionRepo(conn),
        outbox=OutboxRepo(conn),
        answers=AnswerRepo(conn),
        inbound_mail=InboundMailRepo(conn),
        state=StateRepo(conn),
        events=EventRepo(conn),
        roles=RoleRepo(conn),
        people=PeopleRepo(conn),
        support=SupportRepo(conn),
        audit=AuditRepo(conn),
        faq=FaqRepo(conn),
        retention=RetentionRepo(conn),
        subjects=SubjectRepo(conn),
    )
