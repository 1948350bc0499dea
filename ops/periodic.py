"""Duties that run every so often for as long as the app runs: the retention purge, reminders.

One runner owns the loop, its error handling and a clean stop, so each duty is only a function
that does one round and says what it did (or None when there was nothing to say).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

Round = Callable[[], Awaitable[str | None]]


class Periodic:
    """Runs `one_round` at start and then every `interval` seconds until stopped.

    A failed round is logged and the next one comes at its time; stopping lets the current
    round (a short transaction) finish and starts no new one.
    """

    def __init__(self, name: str, one_round: Round, *, interval: float, log: logging.Logger) -> None:
        self.name = name
        self._one_round = one_round
        self._interval = interval
        self._log = log
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        while not self._stopped.is_set():
            try:
                said = await self._one_round()
            except Exception:  # noqa: BLE001 - logged; the next round comes at its time
                self._log.exception("%s: round failed; trying again at the next one", self.name)
            else:
                if said:
                    self._log.info("%s: %s", self.name, said)
            try:
                await asyncio.wait_for(self._stopped.wait(), self._interval)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopped.set()

    async def running(self, _: web.Application) -> AsyncIterator[None]:
        """As an aiohttp cleanup context: started with the app, stopped (and awaited) with it."""
        task = asyncio.create_task(self.run(), name=self.name)
        yield
        self.stop()
        await task
