"""The durable outbox table: enqueue inside the caller's transaction, claim with a lease.

Claiming is one UPDATE … RETURNING. On PostgreSQL the candidate rows are picked with
FOR UPDATE SKIP LOCKED so several instances never claim the same row; on SQLite every
transaction already holds the write lock (BEGIN IMMEDIATE), which serialises claims.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clock import Clock
from domain.jobs import JobPayload
from store.dialect import insert_new, supports_skip_locked
from store.records import FailedJob, Job
from store.schema import outbox

TODO, DOING, DONE, FAILED = "todo", "doing", "done", "failed"


class OutboxRepo:
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock
        self.enqueued = 0

    @property
    def clock(self) -> Clock:
        """The clock `enqueue` counts a delay from, for callers that pick the delay by the time."""
        return self._clock

    async def enqueue(self, payload: JobPayload, *, dedupe_key: str, delay: float = 0.0) -> bool:
        """Add a job (its kind is the payload's) unless one with the same key exists; True if
        it was added."""
        now = self._clock.now()
        values = {
            "kind": payload.kind,
            "payload": json.dumps(payload.to_json()),
            "dedupe_key": dedupe_key,
            "status": TODO,
            "attempts": 0,
            "run_after": now + timedelta(seconds=delay),
            "created_at": now,
            "updated_at": now,
        }
        added = await insert_new(self._conn, outbox, values, "dedupe_key", returning="id") is not None
        self.enqueued += added
        return added

    async def claim(self, *, limit: int, lease_seconds: float) -> list[Job]:
        """Take up to `limit` due jobs (or jobs whose lease ran out) and lease them to the caller."""
        now = self._clock.now()
        statement = _claim_statement(supports_skip_locked(self._conn))
        parameters = {"now": now, "limit": limit, "new_lease_until": now + timedelta(seconds=lease_seconds)}
        rows = (await self._conn.execute(statement, parameters)).all()
        return sorted(
            (
                Job(id=r.id, kind=r.kind, payload=json.loads(r.payload), attempts=r.attempts, created_at=r.created_at)
                for r in rows
            ),
            key=lambda job: job.id,
        )

    async def complete_many(self, job_ids: Sequence[int]) -> None:
        """Mark finished jobs done, all in one statement."""
        await self._conn.execute(_COMPLETE, {"ids": list(job_ids), "now": self._clock.now()})

    async def fail(self, job_id: int, error: str) -> None:
        await self._conn.execute(
            update(outbox)
            .where(outbox.c.id == job_id)
            .values(status=FAILED, lease_until=None, last_error=error, updated_at=self._clock.now())
        )

    async def retry(self, job_id: int, *, at: datetime, error: str, count_attempt: bool = True) -> None:
        """Put the job back for `at`; `count_attempt=False` gives back the attempt its claim took."""
        attempts = outbox.c.attempts if count_attempt else outbox.c.attempts - 1
        await self._conn.execute(
            update(outbox)
            .where(outbox.c.id == job_id)
            .values(
                status=TODO, run_after=at, lease_until=None, last_error=error[:2000],
                attempts=attempts, updated_at=self._clock.now(),
            )
        )

    async def failed_by_kind(self) -> dict[str, int]:
        """Jobs that gave up, per kind: each is something that never reached its recipient."""
        rows = await self._conn.execute(
            select(outbox.c.kind, func.count()).where(outbox.c.status == FAILED).group_by(outbox.c.kind)
        )
        return {kind: count for kind, count in rows.all()}

    async def failed_jobs(self) -> list[FailedJob]:
        """Every job that gave up, oldest first, without its payload."""
        rows = await self._conn.execute(
            select(outbox.c.id, outbox.c.kind, outbox.c.updated_at, outbox.c.attempts, outbox.c.last_error)
            .where(outbox.c.status == FAILED)
            .order_by(outbox.c.id)
        )
        return [FailedJob(r.id, r.kind, r.updated_at, r.attempts, r.last_error) for r in rows.all()]

    async def statuses(self, job_ids: Sequence[int]) -> dict[int, str]:
        """The status of each of these jobs that exists."""
        rows = await self._conn.execute(select(outbox.c.id, outbox.c.status).where(outbox.c.id.in_(list(job_ids))))
        return {job_id: status for job_id, status in rows.all()}

    async def requeue_failed(self, job_ids: Sequence[int] | None) -> list[int]:
        """Put failed jobs (these, or all with None) back to run now, as if just queued: no
        attempts, and a retry budget that starts again. Returns the ids re-queued."""
        now = self._clock.now()
        statement = update(outbox).where(outbox.c.status == FAILED)
        if job_ids is not None:
            statement = statement.where(outbox.c.id.in_(list(job_ids)))
        rows = await self._conn.execute(
            statement.values(
                status=TODO, attempts=0, run_after=now, lease_until=None, created_at=now, updated_at=now
            ).returning(outbox.c.id)
        )
        return sorted(rows.scalars().all())

    async def backlog(self) -> tuple[int, float]:
        """(jobs not yet done, age in seconds of the oldest of them): what /metrics shows."""
        row = (
            await self._conn.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(
                    outbox.c.status.in_([TODO, DOING])
                )
            )
        ).one()
        count, oldest = row
        if oldest is None:
            return 0, 0.0
        if oldest.tzinfo is None:  # func.min bypasses the column type on SQLite
            oldest = oldest.replace(tzinfo=self._clock.now().tzinfo)
        return count, (self._clock.now() - oldest).total_seconds()


# The statements every question runs, built once (see store.dialect.insert_new for why).
_COMPLETE = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=DONE, lease_until=None, last_error=None, updated_at=bindparam("now"))
)


@cache
def _claim_statement(skip_locked: bool) -> Any:
    """Lease up to :limit due jobs (or jobs whose lease ran out) in one UPDATE … RETURNING."""
    now: Any = bindparam("now")
    due = or_(
        and_(outbox.c.status == TODO, outbox.c.run_after <= now),
        and_(outbox.c.status == DOING, outbox.c.lease_until < now),
    )
    candidates = select(outbox.c.id).where(due).order_by(outbox.c.id).limit(bindparam("limit"))
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        update(outbox)
        .where(outbox.c.id.in_(candidates.scalar_subquery()))
        .values(status=DOING, attempts=outbox.c.attempts + 1, lease_until=bindparam("new_lease_until"), updated_at=now)
        .returning(outbox.c.id, outbox.c.kind, outbox.c.payload, outbox.c.attempts, outbox.c.created_at)
    )
