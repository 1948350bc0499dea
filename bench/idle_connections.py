"""Idle and slow connections against a real `python app.py`: how long each is held.

Opens N connections to the bot's listener: a third send nothing, a third trickle their
headers a line every 200 ms, a third send complete headers and trickle the body. Prints how
many the bot closed, and when, against REQUEST_TIMEOUT_SECONDS; then checks that a signed
question is still answered.

Run from the repository root:
    .venv/bin/python bench/idle_connections.py --connections 1000 --timeout 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.channel import FakeChannel
from tests.support.process import bot_process, free_port, wait_healthy

APP_ID = "5b1c0ad0-0000-4000-8000-0000000011e5"
APP_PASSWORD = "idle-bench-secret-not-real"


async def _hold(port: int, kind: str, give_up: float) -> float | None:
    """Seconds until the bot closed the connection (None: still open after `give_up`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()

    async def trickle() -> None:
        if kind == "headers":
            writer.write(b"POST /api/messages HTTP/1.1\r\n")
            lines = (f"X-Slow-{n}: still coming\r\n".encode() for n in range(10_000))
        else:
            writer.write(b"POST /api/messages HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n")
            lines = (b"{" for _ in range(100_000))
        for line in lines:
            await asyncio.sleep(0.2)
            if writer.is_closing():
                return
            writer.write(line)

    task = asyncio.create_task(trickle()) if kind != "idle" else None
    try:
        async with asyncio.timeout(give_up):
            while await reader.read(4096):
                pass
        return time.monotonic() - started
    except TimeoutError:
        return None
    except ConnectionResetError:
        return time.monotonic() - started
    finally:
        if task is not None:
            task.cancel()
        writer.close()


async def main(connections: int, timeout: float) -> None:
    async with FakeChannel.start() as channel:
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="idle-bench-") as tmp:
            env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
            env.update(channel.bot_env(APP_ID, APP_PASSWORD))
            env.update(HOST="127.0.0.1", PORT=str(port), DATABASE_URL=f"sqlite:///{tmp}/bot.db",
                       MAIL_OUTBOX_DIR=f"{tmp}/outbox", REQUEST_TIMEOUT_SECONDS=str(timeout),
                       REQUESTS_CA_BUNDLE=str(channel.ca_bundle), LOG_LEVEL="WARNING")
            with open(Path(tmp) / "bot.log", "wb") as log:
                async with bot_process(env, output=log):
                    await wait_healthy(f"http://127.0.0.1:{port}")
                    kinds = ["idle", "headers", "body"]
                    started = time.monotonic()
                    held = await asyncio.gather(*(
                        _hold(port, kinds[n % 3], give_up=timeout * 3 + 10) for n in range(connections)
                    ))
                    print(f"{connections} connections opened in {time.monotonic() - started:.1f} s; "
                          f"REQUEST_TIMEOUT_SECONDS={timeout:g}")
                    for n, kind in enumerate(kinds):
                        times = sorted(t for t in held[n::3] if t is not None)
                        still_open = sum(t is None for t in held[n::3])
                        if times:
                            print(f"  {kind:8} closed {len(times)}, still open {still_open}; held "
                                  f"{times[0]:.2f}-{times[-1]:.2f} s (median {times[len(times) // 2]:.2f})")
                        else:
                            print(f"  {kind:8} closed 0, still open {still_open}")
                    user = channel.new_user("Still Answered")
                    activity = channel.activities.personal_message(user, "Is the canteen open?")
                    async with aiohttp.ClientSession() as session:
                        response = await channel.deliver(session, activity, path=f"http://127.0.0.1:{port}/api/messages")
                        print(f"afterwards a signed question gets HTTP {response.status}")
                    [reply] = await channel.connector.wait_for(1, timeout=60)
                    print(f"and is answered: {(reply.text or '')[:60]!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=5.0, help="REQUEST_TIMEOUT_SECONDS for the bot")
    options = parser.parse_args()
    asyncio.run(main(options.connections, options.timeout))
