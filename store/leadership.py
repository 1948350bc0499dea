"""One instance at a time, for duties that must not run twice at once (the mailbox watcher).

On PostgreSQL the duty is a session-level advisory lock held on a connection of its own: the
server releases it when that connection ends, so when an instance dies another takes the duty
over within one poll, with nothing to clean up. Several instances on one SQLite file are not a
supported deployment (SQLite is the single-instance default), so there the duty is always ours.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


def lock_key(duty: str) -> int:
    """A stable signed 64-bit advisory-lock key for a duty's name."""
    return int.from_bytes(hashlib.blake2b(duty.encode(), digest_size=8).digest(), "big", signed=True)


@asynccontextmanager
async def leading(
    engine: AsyncEngine, duty: str, *, stopped: asyncio.Event, poll_seconds: float
) -> AsyncIterator[bool]:
    """Wait until this instance holds `duty` (yields True) or `stopped` is set (yields False).

    The duty is released when the block ends, so another instance can take it over.
    """
    if engine.dialect.name != "postgresql":
        yield not stopped.is_set()
        return
    conn = await _acquire(engine, lock_key(duty), stopped, poll_seconds)
    if conn is None:
        yield False
        return
    log.info("this instance now runs the %s", duty)
    try:
        yield True
    finally:
        await _release(conn, lock_key(duty))


async def _acquire(
    engine: AsyncEngine, key: int, stopped: asyncio.Event, poll_seconds: float
) -> AsyncConnection | None:
    while not stopped.is_set():
        try:
            conn = await engine.connect()
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})).scalar()
            await conn.commit()  # the lock is the session's; no transaction stays open
            if got:
                return conn
            await conn.close()
        except Exception:
            log.exception("could not ask for the advisory lock; trying again at the next poll")
        try:
            await asyncio.wait_for(stopped.wait(), poll_seconds)
        except TimeoutError:
            pass
    return None


async def _release(conn: AsyncConnection, key: int) -> None:
    """Unlock before the connection goes back to the pool (a pooled session keeps its locks)."""
    try:
        await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        await conn.commit()
        await conn.close()
    except Exception:  # noqa: BLE001 - whatever went wrong, the connection is dropped below
        log.warning("could not release the advisory lock cleanly; dropping the connection")
        await conn.invalidate()
        await conn.close()
