"""Requests before background work: the outbox worker makes way for requests in flight.

Over capacity something has to wait. A request that waits is a colleague's question not yet
recorded, and a channel that times out and delivers it again; a job that waits is an answer
that comes later, with nothing at risk, because the job is already committed. So while
requests are in flight the worker holds back its next round, for at most `MAX_WAIT_SECONDS`
at a time, so that a steady stream of requests slows the answers but never stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

MAX_WAIT_SECONDS = 0.05


class RequestsFirst:
    """Counts the requests in flight; `make_way()` waits until there are none (or briefly)."""

    def __init__(self, max_wait_seconds: float = MAX_WAIT_SECONDS) -> None:
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._max_wait = max_wait_seconds

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def make_way(self) -> None:
        if self._in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self._max_wait)
