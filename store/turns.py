"""Whose transaction goes next when there are more than the database takes at once.

SQLite has one connection (see store.db). Its pool hands it out first come, first served, so
under a burst a request's transaction (recording a question before it is acknowledged) queued
behind dozens of the outbox worker's: measured with bench/load.py at 300 questions/s, the
wait for the commit was 20 ms at the median and 220 ms at p99. Here a transaction of
`Priority.BACKGROUND` (the outbox worker's, the periodic duties') waits while a request's is
waiting. Priority is said, not inherited: whoever opens a transaction holds a store of one
priority (`Store.in_background()`), so a reader sees which work yields to which.
PostgreSQL's pool (20 connections) follows the same rule once every connection is taken.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Priority(enum.Enum):
    """Whose transaction goes first when they have to wait for a connection."""

    REQUEST = "request"  # a colleague is waiting for it: recording a question, a send's record
    BACKGROUND = "background"  # nobody is waiting: outbox jobs, purges, reminders


class Turns:
    """At most `capacity` transactions at a time; waiting foreground work goes first."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {False: deque(), True: deque()}

    @asynccontextmanager
    async def turn(self, priority: Priority) -> AsyncIterator[None]:
        await self._acquire(priority is Priority.BACKGROUND)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, is_background: bool) -> None:
        if self._free > 0 and not self._waiting[False] and not (is_background and self._waiting[True]):
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[is_background].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the turn was handed over as we were cancelled: pass it on
            else:
                self._waiting[is_background].remove(waiter)
            raise

    def _release(self) -> None:
        """Hand the turn straight to the next waiter (foreground first), or free it."""
        for queue in (self._waiting[False], self._waiting[True]):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1
