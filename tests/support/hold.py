"""Keeping one request to a fake server waiting, so a test can kill the bot at that moment."""

from __future__ import annotations

import asyncio


class Hold:
    """A request kept waiting at a chosen point, so a test can kill the bot at that moment."""

    def __init__(self, kinds: frozenset[str] = frozenset()) -> None:
        self.kinds = kinds
        self.reached = asyncio.Event()
        self._released = asyncio.Event()

    async def wait_here(self) -> None:
        self.reached.set()
        await self._released.wait()

    def release(self) -> None:
        self._released.set()
