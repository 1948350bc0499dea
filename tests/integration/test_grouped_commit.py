"""Store.grouped: questions arriving together share one commit, and one bad one fails alone."""

from __future__ import annotations

import asyncio

from store.store import Store, Unit


async def _enqueue(unit: Unit, key: str) -> bool:
    return await unit.outbox.enqueue("k", {"key": key}, dedupe_key=key)


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
        await unit.outbox.enqueue("k", {}, dedupe_key="broken")
        await unit.questions.set_fields(1, no_such_column=True)  # a programming error

    calls = [store.grouped(lambda unit, n=n: _enqueue(unit, f"ok{n}")) for n in range(5)]
    calls.insert(2, store.grouped(broken))
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len(failures) == 1 and outcomes[2] is failures[0]
    assert outcomes[:2] + outcomes[3:] == [True] * 5
    assert await _keys(store) == 5  # the broken work's enqueue was rolled back with it

