"""SQLite statements run on the event loop's thread instead of a hop to aiosqlite's thread.

Why: aiosqlite runs every call (cursor, execute, fetch, commit) on its own thread and wakes
the event loop for each answer. Our statements take microseconds in SQLite; the hops cost
several times that in futures, self-pipe wake-ups and GIL hand-overs. Measured with
bench/load.py and a statement micro-benchmark: a prebuilt INSERT went from 0.63 to 0.25 ms of
CPU, an empty transaction from 1.3 to 0.6 ms.

aiosqlite's connection is kept (SQLAlchemy's aiosqlite dialect drives it), but its one
dispatch method runs the call directly. What that gives up: a statement that waits cannot
let the loop run meanwhile. Only taking the write lock waits (every transaction starts with
BEGIN IMMEDIATE, see store.db), so SQLite's busy handler is kept short and a locked database
is waited for asynchronously there instead (`begin_immediate`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.util import await_

# SQLite's own wait for a lock, on the loop's thread: kept short; longer waits are async.
BUSY_TIMEOUT_MS = 20
LOCK_RETRY_FIRST_SECONDS = 0.002
LOCK_RETRY_MAX_SECONDS = 0.1


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection whose calls run inline (the connection is opened on aiosqlite's
    thread, hence check_same_thread=False; it is only ever used by one coroutine at a time,
    because the engine's pool lends it to one transaction at a time)."""

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def inline_connector(database: str) -> Any:
    """An `async_creator` for create_async_engine: opens one InlineConnection."""

    async def connect() -> aiosqlite.Connection:
        connection = InlineConnection(
            partial(sqlite3.connect, database, check_same_thread=False), iter_chunk_size=64
        )
        return await connection

    return connect


def begin_immediate(connection: Any, wait_seconds: float) -> None:
    """BEGIN IMMEDIATE, waiting (asynchronously, from SQLAlchemy's sync event hook) while
    another process holds the write lock, up to `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    delay = LOCK_RETRY_FIRST_SECONDS
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except Exception as error:  # SQLAlchemy wraps sqlite3.OperationalError
            if "database is locked" not in str(error) or time.monotonic() >= deadline:
                raise
        await_(asyncio.sleep(delay))
        delay = min(delay * 2, LOCK_RETRY_MAX_SECONDS)
