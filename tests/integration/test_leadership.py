"""Duties that must run on one instance at a time (the mailbox watcher) pass between instances."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import create_engine
from store.leadership import leading, lock_key

DUTY = "mailbox watcher"
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def _leads_within(engine: AsyncEngine, stopped: asyncio.Event, led: asyncio.Event) -> bool:
    async with leading(engine, DUTY, stopped=stopped, poll_seconds=0.05) as leader:
        if leader:
            led.set()
        return leader


@on_postgresql
async def test_one_instance_leads_and_another_takes_over_when_it_stops(database_url: str) -> None:
    first, second = create_engine(database_url), create_engine(database_url)
    stopped, second_led = asyncio.Event(), asyncio.Event()
    try:
        async with leading(first, DUTY, stopped=stopped, poll_seconds=0.05) as leader:
            assert leader
            contender = asyncio.create_task(_leads_within(second, stopped, second_led))
            await asyncio.sleep(0.3)
            assert not second_led.is_set(), "two instances ran the duty at once"
        assert await asyncio.wait_for(contender, 5) is True
    finally:
        await first.dispose()
        await second.dispose()


@on_postgresql
async def test_a_dead_instances_duty_passes_to_another(database_url: str) -> None:
    crashed, survivor = create_engine(database_url), create_engine(database_url)
    stopped, survivor_led = asyncio.Event(), asyncio.Event()
    try:
        async with leading(crashed, DUTY, stopped=stopped, poll_seconds=0.05):
            contender = asyncio.create_task(_leads_within(survivor, stopped, survivor_led))
            await asyncio.sleep(0.2)
            assert not survivor_led.is_set()
            async with survivor.connect() as admin:  # the crashed instance's session ends
                await admin.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_locks "
                         "WHERE locktype = 'advisory' AND objid::bigint = :low"),
                    {"low": lock_key(DUTY) & 0xFFFFFFFF},
                )
            assert await asyncio.wait_for(contender, 5) is True
    finally:
        await crashed.dispose()
        await survivor.dispose()


@on_postgresql
async def test_a_waiting_instance_stops_cleanly_without_leading(database_url: str) -> None:
    holder, waiter = create_engine(database_url), create_engine(database_url)
    never, stop_waiting, led = asyncio.Event(), asyncio.Event(), asyncio.Event()
    try:
        async with leading(holder, DUTY, stopped=never, poll_seconds=0.05):
            waiting = asyncio.create_task(_leads_within(waiter, stop_waiting, led))
            await asyncio.sleep(0.2)
            stop_waiting.set()
            assert await asyncio.wait_for(waiting, 5) is False
    finally:
        await holder.dispose()
        await waiter.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_on_sqlite_the_single_instance_always_leads(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert await _leads_within(engine, asyncio.Event(), asyncio.Event()) is True
    finally:
        await engine.dispose()
