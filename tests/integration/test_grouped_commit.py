"""Store.grouped: questions arriving together share one commit, and one bad one fails alone."""

from __future__ import annotations

import asyncio

from store.store import Store, Unit
from tests.support.jobs import sample


async def _enqueue(unit: Unit, key: str) -> bool:
    return await unit.outbox.enqueue(sample("k", key=key), dedupe_key=key)


async def _keys(store: Store) -> int:
    async with store.unit() as unit:
        count, _ = await unit.outbox.backlog()
    return count


async def test_work_arriving_together_is_committed_and_each_caller_gets_its_own_result(store: Store) -> None:
    results = await asyncio.gather(*(store.grouped(lambda unit, n=n: _enqueue(unit, f"q{n}")) for n in range(50)))
    assert results == [True] * 50
    assert await _keys(store) == 50
    # the same keys again: each caller sees that its own work was a repeat
    assert await asyncio.gather(*(store.grouped(lambda unit, n=n: _enqueue(unit, f"q{n}")) for n in range(3))) == [
        False, False, False,
    ]


async def test_a_failing_work_fails_alone_and_its_neighbours_commit(store: Store) -> None:
    async def broken(unit: Unit) -> None:
        await unit.outbox.enqueue(sample("k"), dedupe_key="broken")
        await unit.questions.set_fields(1, no_such_column=True)  # a programming error

    calls = [store.grouped(lambda unit, n=n: _enqueue(unit, f"ok{n}")) for n in range(5)]
    calls.insert(2, store.grouped(broken))
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len(failures) == 1 and outcomes[2] is failures[0]
    assert outcomes[:2] + outcomes[3:] == [True] * 5
    assert await _keys(store) == 5  # the broken work's enqueue was rolled back with it



async def test_a_requests_commit_goes_before_waiting_background_work(store: Store) -> None:
    """On SQLite's one connection a question's commit (what its acknowledgement waits for) is
    not queued behind the outbox worker's transactions; on PostgreSQL nothing needs to wait."""
    order: list[str] = []
    holding = asyncio.Event()
    release = asyncio.Event()

    background = store.in_background()

    async def hold() -> None:
        async with background.unit():
            holding.set()
            await release.wait()

    async def background_job(n: int) -> None:
        async with background.unit() as unit:
            await _enqueue(unit, f"job{n}")
            order.append(f"job{n}")

    async def question(unit: Unit) -> bool:
        order.append("question")
        return await _enqueue(unit, "question")

    holder = asyncio.create_task(hold())
    await holding.wait()
    jobs = [asyncio.create_task(background_job(n)) for n in range(5)]
    await asyncio.sleep(0.05)  # the jobs are waiting for the connection
    asked = asyncio.create_task(store.grouped(question))
    await asyncio.sleep(0.05)
    release.set()
    assert await asked is True
    await asyncio.gather(holder, *jobs)
    assert sorted(order) == ["job0", "job1", "job2", "job3", "job4", "question"]
    if store.engine.dialect.name == "sqlite":
        assert order[0] == "question"
    assert await _keys(store) == 6
