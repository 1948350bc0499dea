"""The outbox worker: claims due jobs, runs them, and records success, retry or failure.

Jobs are at-least-once: a job whose worker died is reclaimed when its lease runs out, so every
job handler must be safe to run twice (handlers check state; transports dedupe on a key).

Under a burst the bookkeeping, not the work, would dominate: a transaction to claim each job
and another to complete it. So jobs are claimed many at a time, kinds registered with
`batched()` get all their claimed jobs in one call (triage encodes a batch of questions in one
model call) and are recorded as done in the transaction that claims the next jobs, as are
`rerunnable()` kinds (the mail forward); other jobs may have sent what cannot be sent
idempotently (a Teams message), so they are recorded at once in short commits of their own.

Over capacity, requests come first: the worker holds its next round while requests are in
flight (`make_way`, see outbox.precedence), and its transactions wait while a request's is
waiting (store.turns). Questions are then recorded and acknowledged at once; answers wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from errors import Permanent, Transient
from outbox.retry import RetryPolicy
from store.records import Job
from store.store import Store

JobHandler = Callable[[dict[str, Any]], Awaitable[None]]
BatchHandler = Callable[[list[dict[str, Any]]], Awaitable[None]]

log = logging.getLogger(__name__)

# After a wake-up, wait this long before claiming, so that jobs enqueued by a burst of requests
# are claimed (and triaged, and completed) together rather than one transaction each. Measured
# with bench/load.py at 50 questions/s on SQLite: 10 ms gave 25 ms of CPU per question, 50 ms
# gave 20 (bigger encoder batches, fewer commits); 100 ms gained nothing more and adds latency.
GATHER_SECONDS = 0.05
# Jobs claimed per round. SQLite statements run on the event loop's thread (store.sqlite_inline),
# so a round's claim and a batch's triage transaction hold the loop, and every request waits
# behind them; bigger rounds make bigger encoder batches. Measured with bench/load.py at 300
# questions/s: 16 kept up with 207/s, 32 with 216, 64 with 217 and an ack p99 nearer 100 ms.
# A full claim claims again at once, so this bounds the pause, not the rate.
CLAIM_LIMIT = 32


@dataclass(frozen=True)
class batched:
    """Register a handler that takes every claimed job of its kind at once (their payloads).

    It succeeds or fails as a whole: on an error every job of the batch is retried. Its jobs
    are recorded as done with the next claim, a few milliseconds later, so a crash in between
    runs them again: only for work whose effects are all in the database (and so safe to
    repeat), such as triage, never for sending."""

    handler: BatchHandler


@dataclass(frozen=True)
class rerunnable:
    """Register a one-job handler that a rerun leaves unchanged: it records what it did in the
    database and checks that first, and what it sends is deduplicated by the receiver (the mail
    transports find a mail already sent by its key). Like `batched` kinds, its jobs are
    recorded as done with the next claim rather than in a commit of their own."""

    handler: JobHandler


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        handlers: Mapping[str, JobHandler | batched | rerunnable],
        *,
        retry: RetryPolicy,
        poll_seconds: float,
        lease_seconds: float,
        # Jobs mostly wait (on a send, a mail file's fsync, the model): with 16 at a time the
        # bot kept up with 102 questions/s under a 300/s burst, with 64 with 165 (bench/load.py).
        concurrency: int = 64,
        make_way: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store.in_background()  # claims and outcomes wait for requests' commits
        self._records = store  # a send's record does not (see _record_sent)
        self._handlers = dict(handlers)
        self._retry = retry
        self._poll_seconds = poll_seconds
        self._lease_seconds = lease_seconds
        self._concurrency = concurrency
        self._make_way = make_way
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._finished: list[int] = []  # done, not yet recorded: see _settle_and_claim
        self._sent: list[tuple[int, asyncio.Future[None]]] = []  # sent, being recorded: see _record_sent
        self._recorder: asyncio.Task[None] | None = None
        self._stopping = False
        self.counts: dict[str, int] = {"succeeded": 0, "retried": 0, "failed": 0}

    @property
    def kinds(self) -> frozenset[str]:
        """The job kinds this worker runs."""
        return frozenset(self._handlers)

    def wake(self) -> None:
        """Something was enqueued in this process: look now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            if self._make_way is not None:
                await self._make_way()
            limit = min(self._concurrency - len(self._running), CLAIM_LIMIT)
            jobs = await self._settle_and_claim(limit) if limit > 0 or self._finished else []
            for batch in self._batches(jobs):
                name = f"outbox-{batch[0].kind}-{batch[0].id}"
                task = asyncio.create_task(self._execute(batch), name=name)
                self._running.add(task)
                task.add_done_callback(self._done)
            if len(jobs) < limit or limit <= 0:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_seconds)
                except TimeoutError:
                    continue
                await asyncio.sleep(GATHER_SECONDS)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop claiming, let running jobs finish; jobs still running after the grace are
        cancelled, and their leases hand them to the next worker."""
        self._stopping = True
        self._wakeup.set()
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._finished:
            await self._settle_and_claim(0)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wakeup.set()

    async def _settle_and_claim(self, limit: int) -> list[Job]:
        """Record the jobs finished since the last round as done, and claim up to `limit` more,
        in one transaction.

        Jobs of `batched` and `rerunnable` kinds are recorded here, a few milliseconds after
        they finished: if the process dies in between they run again when their lease runs
        out, which changes nothing (see those markers); in exchange they cost no transaction
        of their own."""
        finished, self._finished = self._finished, []
        try:
            async with self._store.unit() as unit:
                if finished:
                    await unit.outbox.complete_many(finished)
                jobs = await unit.outbox.claim(limit=limit, lease_seconds=self._lease_seconds) if limit > 0 else []
        except Exception:
            self._finished[:0] = finished
            log.exception("outbox: could not record or claim jobs; retrying at the next poll")
            return []
        self.counts["succeeded"] += len(finished)
        return jobs

    def _batches(self, jobs: list[Job]) -> list[list[Job]]:
        """One batch per job, except that jobs of a `batched` kind go together."""
        singles: list[list[Job]] = []
        grouped: dict[str, list[Job]] = {}
        for job in jobs:
            if isinstance(self._handlers.get(job.kind), batched):
                grouped.setdefault(job.kind, []).append(job)
            else:
                singles.append([job])
        return [*grouped.values(), *singles]

    async def _execute(self, batch: list[Job]) -> None:
        """Run one job, or one batch of a `batched` kind, and record what became of it."""
        first = batch[0]
        handler = self._handlers.get(first.kind)
        try:
            if handler is None:
                raise Permanent(f"no handler for job kind {first.kind!r}")
            if isinstance(handler, batched):
                await handler.handler([job.payload for job in batch])
            else:
                await (handler.handler if isinstance(handler, rerunnable) else handler)(first.payload)
        except Transient as error:
            for job in batch:
                await self._reschedule(job, str(error), error.retry_after)
        except Permanent as error:
            if len(batch) > 1:  # one bad job (an unreadable payload, say) must not fail its neighbours
                await self._one_at_a_time(batch, error)
                return
            await self._fail(first, str(error))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("outbox: job %s (%s) raised", first.id, first.kind)
            if len(batch) > 1 and any(self._retry.exhausted(job.attempts) for job in batch):
                await self._one_at_a_time(batch, error)
                return
            for job in batch:
                if self._retry.exhausted(job.attempts):  # unexpected, so it looks permanent
                    await self._fail(job, f"gave up after {job.attempts} attempts: {type(error).__name__}: {error}")
                else:
                    await self._reschedule(job, f"{type(error).__name__}: {error}", None)
        else:
            if isinstance(handler, batched | rerunnable):
                self._finished.extend(job.id for job in batch)
                self._wakeup.set()
                return
            # The job may have sent something that cannot be sent idempotently (a Teams
            # message): a crash before it is recorded sends it again. So it is recorded at once.
            try:
                await self._record_sent(first.id)
            except Exception:
                log.exception("outbox: job %s (%s) done but not recorded: it runs again after its lease",
                              first.id, first.kind)
                return
            self.counts["succeeded"] += 1

    async def _one_at_a_time(self, batch: list[Job], error: Exception) -> None:
        """A batch that would fail for good runs again job by job, so only the job at fault
        fails (and the others are done, or retried on their own)."""
        log.warning("outbox: a batch of %d %s jobs failed (%s): running them one at a time",
                    len(batch), batch[0].kind, type(error).__name__)
        for job in batch:
            await self._execute([job])

    async def _record_sent(self, job_id: int) -> None:
        """Record a job as done in a short commit of its own, ahead of waiting background work;
        jobs finishing while that commit runs go together in the next one. Never in a commit
        shared with other work (a group of questions), which would make the crash window as long
        as that work."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sent.append((job_id, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_all_sent(), name="outbox-record-sent")
        await asyncio.shield(done)  # a cancelled job does not cancel the record

    async def _record_all_sent(self) -> None:
        while self._sent:
            sent, self._sent = self._sent, []
            try:
                async with self._records.unit() as unit:
                    await unit.outbox.complete_many([job_id for job_id, _ in sent])
            except Exception as error:  # noqa: BLE001 - each job's own task reports it
                for _, done in sent:
                    done.set_exception(error)
            else:
                for _, done in sent:
                    done.set_result(None)

    async def _reschedule(self, job: Job, reason: str, retry_after: float | None) -> None:
        """Try again later, unless the next try would be past the job's time budget.

        A server that says when to come back (Retry-After) is throttling, not failing: that
        attempt is not counted, so it does not lengthen the backoff of later failures."""
        throttled = retry_after is not None
        delay = self._retry.delay(job.attempts, retry_after)
        now = self._store.clock.now()
        if self._retry.out_of_time(job.created_at, now + timedelta(seconds=delay)):
            hours = self._retry.give_up_after.total_seconds() / 3600
            await self._fail(job, f"gave up after {hours:g} h: {reason}")
            return
        log.warning("outbox: job %s (%s) will retry in %.1fs: %s", job.id, job.kind, delay, reason)
        async with self._store.unit() as unit:
            await unit.outbox.retry(
                job.id, at=now + timedelta(seconds=delay), error=reason, count_attempt=not throttled
            )
        self.counts["retried"] += 1
        asyncio.get_running_loop().call_later(delay, self._wakeup.set)

    async def _fail(self, job: Job, reason: str) -> None:
        log.error("outbox: job %s (%s) failed for good: %s", job.id, job.kind, reason)
        async with self._store.unit() as unit:
            await unit.outbox.fail(job.id, reason)
        self.counts["failed"] += 1
