"""The bot as an operator runs it: `python app.py` in its own process, configured by environment."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

import aiohttp

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@asynccontextmanager
async def bot_process(
    env: dict[str, str], *, output: IO[bytes] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start app.py with `env` over a clean environment; output to a pipe, or to `output`
    (a file, for long runs whose logs nobody reads as they come: a full pipe would block)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "TO_", "FAQ_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "app.py", cwd=ROOT, env={**clean, **env},
        stdout=output or asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def read_until(process: asyncio.subprocess.Process, needle: str) -> str:
    seen = ""
    assert process.stdout is not None
    while needle not in seen:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line:
            raise AssertionError(f"process ended before saying {needle!r}:\n{seen}")
        seen += line.decode()
    return seen


async def wait_healthy(base_url: str, *, timeout: float = 60.0) -> None:
    """Poll /healthz until it answers 200: the process gives no other sign that it is ready."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{base_url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{base_url} never answered /healthz")
            await asyncio.sleep(0.1)
