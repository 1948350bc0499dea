"""Keeping one request to a fake server waiting, so a test can kill the bot at that moment."""

from __future__ import annotations

import asyncio

from aiohttp import web


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

    async def client_gone(self, request: web.Request, *, within: float = 2.0) -> bool:
        """After release: did the client die while held? A killed process's socket closes at
        once, but the server's event loop notices only on a later turn, so look for a moment."""
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            if request.transport is None or request.transport.is_closing():
                return True
            await asyncio.sleep(0.05)
        return False
