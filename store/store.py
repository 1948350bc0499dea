"""The store service: units of work over one engine. Handlers see repositories, never SQL."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
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
from store.turns import Priority, Turns


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


@dataclass
class _Shared:
    """What every priority's view of one store shares: the connections' turns and the group
    commit."""

    turns: Turns
    after_enqueue: Callable[[], None] | None = None
    grouped: list[tuple[Work, asyncio.Future[Any]]] = field(default_factory=list)
    committer: asyncio.Task[None] | None = None


class Store:
    """Units of work at one priority (store.turns): `Store(engine)` is a request's,
    `in_background()` the same store for work nobody is waiting for."""

    def __init__(self, engine: AsyncEngine, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.clock = clock  # what every timestamp the store writes, and every due time, is read from
        self.priority = Priority.REQUEST
        # The pool's connections go to requests first (store.turns).
        self._shared = _Shared(Turns(connection_limit(engine)))

    def in_background(self) -> Store:
        """This store for background work: its transactions wait while a request's waits."""
        view = copy.copy(self)  # shares the engine, the turns and the group commit
        view.priority = Priority.BACKGROUND
        return view

    @property
    def after_enqueue(self) -> Callable[[], None] | None:
        """Called after a commit that enqueued outbox jobs, so a local worker starts at once."""
        return self._shared.after_enqueue

    @after_enqueue.setter
    def after_enqueue(self, callback: Callable[[], None] | None) -> None:
        self._shared.after_enqueue = callback

    async def grouped(self, work: Callable[[Unit], Awaitable[T]]) -> T:
        """Run `work` in a transaction shared with whatever other grouped work is waiting, and
        return its result once that transaction has committed.

        Under a burst every question would otherwise pay for its own BEGIN and COMMIT (and on
        PostgreSQL its own WAL flush); grouped, the commits of a burst cost a few. `work` must
        only use the unit: if any work in a group fails, the group is rolled back and each work
        runs again in a transaction of its own, so one bad input never fails its neighbours.
        """
        shared = self._shared
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        shared.grouped.append((work, future))
        if shared.committer is None or shared.committer.done():
            # A task of its own: a caller that is cancelled does not stop its group's commit.
            shared.committer = asyncio.create_task(self._commit_groups(), name="store-grouped-commit")
        return await future

    async def _commit_groups(self) -> None:
        """Acknowledgements wait for these commits, whoever asked: they go at request priority."""
        shared = self._shared
        while shared.grouped:
            group, shared.grouped = shared.grouped, []
            try:
                async with self._unit(Priority.REQUEST) as unit:
                    results = [await work(unit) for work, _ in group]
            except Exception:  # noqa: BLE001 - each work runs again alone and gets its own outcome
                for work, future in group:
                    await self._commit_alone(work, future)
            else:
                for (_, future), result in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(result)

    async def _commit_alone(self, work: Work, future: asyncio.Future[Any]) -> None:
        try:
            async with self._unit(Priority.REQUEST) as unit:
                result = await work(unit)
        except Exception as error:  # noqa: BLE001 - handed to the caller, who sees it as its own
            if not future.done():
                future.set_exception(error)
        else:
            if not future.done():
                future.set_result(result)

    def unit(self) -> AbstractAsyncContextManager[Unit]:
        """A transaction at this store's priority: committed when the block ends, rolled back if
        it raises."""
        return self._unit(self.priority)

    @asynccontextmanager
    async def _unit(self, priority: Priority) -> AsyncIterator[Unit]:
        async with self._shared.turns.turn(priority), self.engine.begin() as conn:
            unit = _unit(conn, self.clock)
            yield unit
        if unit.outbox.enqueued and self._shared.after_enqueue is not None:
            self._shared.after_enqueue()

    async def ping(self) -> bool:
        """True if the database answers a trivial query (for /healthz)."""
        try:
            async with self._shared.turns.turn(Priority.REQUEST), self.engine.connect() as conn:
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
