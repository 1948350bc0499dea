"""The store service: units of work over one engine. Handlers see repositories, never SQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from clock import SYSTEM_CLOCK, Clock
from store.answers import AnswerRepo, InboundMailRepo, StateRepo
from store.db import connection_limit
from store.events import AuditRepo, EventRepo, PeopleRepo, RoleRepo, SupportRepo
from store.faq_examples import FaqRepo
from store.outbox import OutboxRepo
from store.questions import QuestionRepo
from store.retention import RetentionRepo
from store.subjects import SubjectRepo
from store.turns import Turns, foreground


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


T = TypeVar("T")
Work = Callable[[Unit], Awaitable[Any]]


class Store:
    def __init__(self, engine: AsyncEngine, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.clock = clock  # what every timestamp the store writes, and every due time, is read from
        # The pool's connections go to requests first (store.turns).
        self._turns = Turns(connection_limit(engine))
        # Called after a commit that enqueued outbox jobs, so a local worker starts at once.
        self.after_enqueue: Callable[[], None] | None = None
        self._grouped: list[tuple[Work, asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def grouped(self, work: Callable[[Unit], Awaitable[T]]) -> T:
        """Run `work` in a transaction shared with whatever other grouped work is waiting, and
        return its result once that transaction has committed.

        Under a burst every question would otherwise pay for its own BEGIN and COMMIT (and on
        PostgreSQL its own WAL flush); grouped, the commits of a burst cost a few. `work` must
        only use the unit: if any work in a group fails, the group is rolled back and each work
        runs again in a transaction of its own, so one bad input never fails its neighbours.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._grouped.append((work, future))
        if self._committer is None or self._committer.done():
            # A task of its own: a caller that is cancelled does not stop its group's commit.
            self._committer = asyncio.create_task(self._commit_groups(), name="store-grouped-commit")
        return await future

    async def _commit_groups(self) -> None:
        foreground()  # commits acknowledgements wait for, whoever started this task
        while self._grouped:
            group, self._grouped = self._grouped, []
            try:
                async with self.unit() as unit:
                    results = [await work(unit) for work, _ in group]
            except Exception:
                for work, future in group:
                    await self._commit_alone(work, future)
            else:
                for (_, future), result in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(result)

    async def _commit_alone(self, work: Work, future: asyncio.Future[Any]) -> None:
        try:
            async with self.unit() as unit:
                result = await work(unit)
        except Exception as error:  # noqa: BLE001 - handed to the caller, who sees it as its own
            if not future.done():
                future.set_exception(error)
        else:
            if not future.done():
                future.set_result(result)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        async with self._turns.turn(), self.engine.begin() as conn:
            unit = _unit(conn, self.clock)
            yield unit
        if unit.outbox.enqueued and self.after_enqueue is not None:
            self.after_enqueue()

    async def ping(self) -> bool:
        """True if the database answers a trivial query (for /healthz)."""
        try:
            async with self._turns.turn(), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False
        return True


def _unit(conn: AsyncConnection, clock: Clock) -> Unit:
    return Unit(
        questions=QuestionRepo(conn, clock),
        outbox=OutboxRepo(conn, clock),
        answers=AnswerRepo(conn, clock),
        inbound_mail=InboundMailRepo(conn, clock),
        state=StateRepo(conn, clock),
        events=EventRepo(conn, clock),
        roles=RoleRepo(conn, clock),
        people=PeopleRepo(conn, clock),
        support=SupportRepo(conn, clock),
        audit=AuditRepo(conn, clock),
        faq=FaqRepo(conn, clock),
        retention=RetentionRepo(conn),
        subjects=SubjectRepo(conn),
    )
