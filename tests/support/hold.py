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
        self._server_loop: asyncio.AbstractEventLoop | None = None

    async def wait_here(self) -> None:
        self._server_loop = asyncio.get_running_loop()
        self.reached.set()
        await self._released.wait()

    def release(self) -> None:
        """Let the held request go on; callable from the test's thread (the fake servers run
        on their own loop, which an Event set from elsewhere would not wake)."""
        loop = self._server_loop
        if loop is None or loop.is_closed():
            self._released.set()
        else:
            loop.call_soon_threadsafe(self._released.set)

    async def client_gone(self, request: web.Request, *, within: float = 2.0) -> bool:
        """After release: did the client die while held? A killed process's socket closes at
        once, but the server's event loop notices only on a later turn, so look for a moment."""
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            if request.transport is None or request.transport.is_closing():
                return True
            await asyncio.sleep(0.05)
        return False
