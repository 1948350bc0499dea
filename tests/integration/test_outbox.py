"""The durable outbox on a real database: once, in order of need, retried as the server asks."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from datetime import timedelta
from typing import Any

from errors import Permanent, Transient
from outbox.precedence import RequestsFirst
from outbox.retry import RetryPolicy
from outbox.worker import OutboxWorker, batched, rerunnable
from store.store import Store
from tests.support.clock import ShiftedClock
from tests.support.jobs import sample


def _worker(store: Store, handlers: dict[str, Any], **options: Any) -> OutboxWorker:
    worker = OutboxWorker(
        store,
        handlers,
        retry=RetryPolicy(
            base_seconds=0.05, max_seconds=0.2, max_attempts=options.pop("max_attempts", 5),
            give_up_after=options.pop("give_up_after", timedelta(hours=24)),
        ),
        poll_seconds=0.05,
        lease_seconds=options.pop("lease_seconds", 30.0),
        **options,
    )
    store.after_enqueue = worker.wake
    return worker


async def _enqueue(store: Store, kind: str, key: str, **payload: Any) -> bool:
    async with store.unit() as unit:
        return await unit.outbox.enqueue(sample(kind, **payload), dedupe_key=key)


async def _status(store: Store) -> dict[str, Any]:
    async with store.unit() as unit:
        count, age = await unit.outbox.backlog()
    return {"backlog": count, "oldest_age": age}


async def test_each_job_runs_once_and_a_duplicate_key_is_ignored(store: Store) -> None:
    seen: list[int] = []
    done = asyncio.Event()

    async def record(payload: dict[str, Any]) -> None:
        seen.append(payload["n"])
        if len(seen) == 20:
            done.set()

    worker = _worker(store, {"record": record})
    task = asyncio.create_task(worker.run())
    for n in range(20):
        assert await _enqueue(store, "record", f"k{n}", n=n)
    assert not await _enqueue(store, "record", "k3", n=3)
    await asyncio.wait_for(done.wait(), 10)
    await worker.stop()
    await task
    assert sorted(seen) == list(range(20))
    assert (await _status(store))["backlog"] == 0


async def test_retry_after_is_honoured_then_the_job_succeeds(store: Store) -> None:
    attempts: list[float] = []
    done = asyncio.Event()

    async def throttled(_: dict[str, Any]) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise Transient("429 from the server", retry_after=0.4)
        done.set()

    worker = _worker(store, {"throttled": throttled})
    task = asyncio.create_task(worker.run())
    await _enqueue(store, "throttled", "only")
    await asyncio.wait_for(done.wait(), 10)
    await worker.stop()
    await task
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(attempts) == 3
    assert all(gap >= 0.4 for gap in gaps), gaps
    assert worker.counts == {"succeeded": 1, "retried": 2, "failed": 0}


async def test_a_long_throttling_storm_delays_a_job_but_never_fails_it(store: Store) -> None:
    calls = 0
    done = asyncio.Event()

    async def storm(_: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls <= 10:  # more 429s than the job has attempts
            raise Transient("429 from the server", retry_after=0.01)
        done.set()

    worker = _worker(store, {"storm": storm}, max_attempts=3)
    task = asyncio.create_task(worker.run())
    await _enqueue(store, "storm", "only")
    await asyncio.wait_for(done.wait(), 10)
    await worker.stop()
    await task
    assert worker.counts == {"succeeded": 1, "retried": 10, "failed": 0}


async def test_permanent_failures_stop_at_once_and_unexpected_errors_after_max_attempts(store: Store) -> None:
    calls: list[str] = []

    async def broken(payload: dict[str, Any]) -> None:
        calls.append(payload["how"])
        if payload["how"] == "permanent":
            raise Permanent("403 from the connector: the bot was removed")
        raise KeyError("a bug")

    worker = _worker(store, {"broken": broken}, max_attempts=3)
    task = asyncio.create_task(worker.run())
    await _enqueue(store, "broken", "p", how="permanent")
    await _enqueue(store, "broken", "b", how="bug")
    await _enqueue(store, "unknown-kind", "u")
    for _ in range(200):
        if worker.counts["failed"] == 3:
            break
        await asyncio.sleep(0.05)
    await worker.stop()
    await task
    assert calls.count("permanent") == 1
    assert calls.count("bug") == 3
    assert worker.counts["failed"] == 3
    assert (await _status(store))["backlog"] == 0


async def test_transient_failures_are_retried_past_max_attempts_until_the_time_budget(store: Store) -> None:
    """An outage is not counted in attempts: the job keeps trying (backing off) for as long as
    its budget lasts, and gives up only when its next try would be past it."""
    tries: list[float] = []

    async def outage(_: dict[str, Any]) -> None:
        tries.append(time.monotonic())
        raise Transient("could not send a Teams message: HTTP 503")

    worker = _worker(store, {"outage": outage}, max_attempts=3, give_up_after=timedelta(seconds=1.5))
    task = asyncio.create_task(worker.run())
    queued = time.monotonic()
    await _enqueue(store, "outage", "only")
    for _ in range(100):
        if worker.counts["failed"]:
            break
        await asyncio.sleep(0.05)
    await worker.stop()
    await task
    assert worker.counts["failed"] == 1
    assert len(tries) > 3  # more than OUTBOX_MAX_ATTEMPTS
    # the last try comes less than one backoff (0.2 s here) before the budget ends
    assert 1.5 - 0.2 <= tries[-1] - queued < 1.5 + 0.5
    async with store.unit() as unit:
        [failed] = await unit.outbox.failed_jobs()
    assert failed.kind == "outage" and failed.last_error is not None
    assert failed.last_error.startswith("gave up after ") and failed.last_error.endswith(": HTTP 503")


async def test_a_crashed_workers_jobs_come_back_when_the_lease_runs_out(store: Store) -> None:
    clock = ShiftedClock()
    store = Store(store.engine, clock)
    async with store.unit() as unit:
        await unit.outbox.enqueue(sample("work"), dedupe_key="w")
    async with store.unit() as unit:  # a worker claims it, then dies without finishing
        assert len(await unit.outbox.claim(limit=10, lease_seconds=0.2)) == 1
    async with store.unit() as unit:
        assert await unit.outbox.claim(limit=10, lease_seconds=30) == []
    clock.advance(0.3)
    async with store.unit() as unit:
        reclaimed = await unit.outbox.claim(limit=10, lease_seconds=30)
    assert [job.attempts for job in reclaimed] == [2]


async def test_two_workers_never_claim_the_same_job(store: Store) -> None:
    async with store.unit() as unit:
        for n in range(60):
            await unit.outbox.enqueue(sample("work", n=n), dedupe_key=f"w{n}")

    async def claim_all() -> list[int]:
        mine: list[int] = []
        while True:
            async with store.unit() as unit:
                jobs = await unit.outbox.claim(limit=3, lease_seconds=30)
            if not jobs:
                return mine
            mine.extend(job.payload["n"] for job in jobs)

    first, second = await asyncio.gather(claim_all(), claim_all())
    assert sorted(first + second) == list(range(60))
    assert not set(first) & set(second)


async def _burst_through_batched(
    store: Store, kind: str, count: int, handler: Any, done: asyncio.Event
) -> OutboxWorker:
    """`count` jobs committed together (a burst, before the worker looks), run by a worker
    with `handler` registered as batched, until `done`; returns the stopped worker."""
    async with store.unit() as unit:
        for n in range(count):
            await unit.outbox.enqueue(sample(kind, n=n), dedupe_key=f"{kind}{n}")
    worker = _worker(store, {kind: batched(handler)})
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(done.wait(), 10)
    await worker.stop()
    await task
    return worker


async def test_a_batched_kind_gets_every_due_job_in_one_call_and_each_is_completed(store: Store) -> None:
    calls: list[list[int]] = []
    done = asyncio.Event()

    async def triage_all(payloads: list[dict[str, Any]]) -> None:
        calls.append([payload["n"] for payload in payloads])
        done.set()

    worker = await _burst_through_batched(store, "triage", 10, triage_all, done)
    assert calls == [list(range(10))]
    assert worker.counts == {"succeeded": 10, "retried": 0, "failed": 0}
    assert (await _status(store))["backlog"] == 0


async def test_a_failed_batch_is_retried_whole_and_nothing_is_lost(store: Store) -> None:
    seen: list[list[int]] = []
    done = asyncio.Event()

    async def flaky(payloads: list[dict[str, Any]]) -> None:
        seen.append(sorted(payload["n"] for payload in payloads))
        if len(seen) == 1:
            raise Transient("the database said busy", retry_after=0.1)
        if sum(len(batch) for batch in seen[1:]) == 4:
            done.set()

    worker = await _burst_through_batched(store, "flaky", 4, flaky, done)
    assert seen[0] == [0, 1, 2, 3]
    assert sorted(n for batch in seen[1:] for n in batch) == [0, 1, 2, 3]
    assert worker.counts == {"succeeded": 4, "retried": 4, "failed": 0}
    assert (await _status(store))["backlog"] == 0


async def test_one_bad_job_in_a_batch_fails_alone_and_its_neighbours_are_done(store: Store) -> None:
    """A payload that cannot be read (a corrupted row) fails its batch for good; the batch then
    runs job by job, so only that job fails and the questions beside it are still triaged."""
    done_alone: list[int] = []
    done = asyncio.Event()

    async def triage(payloads: list[dict[str, Any]]) -> None:
        if any(payload["n"] == 2 for payload in payloads):
            raise Permanent("question.triage payload: unknown keys n")
        if len(payloads) == 1:
            done_alone.append(payloads[0]["n"])
        if sorted(done_alone) == [0, 1, 3, 4]:
            done.set()

    worker = await _burst_through_batched(store, "triage", 5, triage, done)
    assert sorted(done_alone) == [0, 1, 3, 4]
    assert worker.counts == {"succeeded": 4, "retried": 0, "failed": 1}
    async with store.unit() as unit:
        [failed] = await unit.outbox.failed_jobs()
        assert failed.kind == "triage" and "unknown keys n" in (failed.last_error or "")


async def test_jobs_wait_while_requests_are_in_flight_and_run_when_they_end(store: Store) -> None:
    """A burst of requests holds the worker's next round back (their questions are recorded
    first); the jobs run as soon as the requests are answered."""
    requests = RequestsFirst(max_wait_seconds=30.0)
    ran = asyncio.Event()

    async def job(_: dict[str, Any]) -> None:
        ran.set()

    worker = _worker(store, {"job": job}, make_way=requests.make_way)
    with requests.request():
        task = asyncio.create_task(worker.run())
        await _enqueue(store, "job", "during-the-request")
        await asyncio.sleep(0.5)
        assert not ran.is_set()
    await asyncio.wait_for(ran.wait(), 5)
    await worker.stop()
    await task


async def test_a_steady_stream_of_requests_slows_the_worker_but_never_stops_it(store: Store) -> None:
    requests = RequestsFirst(max_wait_seconds=0.05)
    seen: list[int] = []

    async def record(payload: dict[str, Any]) -> None:
        seen.append(payload["n"])

    worker = _worker(store, {"record": record}, make_way=requests.make_way)
    task = asyncio.create_task(worker.run())
    with requests.request():  # never answered while the jobs run
        for n in range(40):  # more than one round's claim
            await _enqueue(store, "record", f"k{n}", n=n)
        deadline = time.monotonic() + 10
        while len(seen) < 40 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    await worker.stop()
    await task
    assert sorted(seen) == list(range(40))


async def test_a_rerunnable_job_is_recorded_with_the_next_claim_and_a_rerun_changes_nothing(store: Store) -> None:
    """A rerunnable job costs no commit of its own; if the worker dies before its completion is
    recorded, the job runs again and (checking what it did) does nothing more."""
    effects: list[str] = []

    async def forward(payload: dict[str, Any]) -> None:
        if payload["mail"] not in effects:  # what the mail transports do with a mail's key
            effects.append(payload["mail"])

    clock = ShiftedClock()
    store = Store(store.engine, clock)
    worker = _worker(store, {"forward": rerunnable(forward)})
    task = asyncio.create_task(worker.run())
    await _enqueue(store, "forward", "f1", mail="forward:1")
    deadline = time.monotonic() + 5
    while not effects and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    task.cancel()  # dies before the next claim records the job as done
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert (await _status(store))["backlog"] == 1

    clock.advance(30)  # the dead worker's lease runs out
    second = _worker(store, {"forward": rerunnable(forward)})
    task = asyncio.create_task(second.run())
    deadline = time.monotonic() + 10
    while (await _status(store))["backlog"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await second.stop()
    await task
    assert (await _status(store))["backlog"] == 0
    assert effects == ["forward:1"]
