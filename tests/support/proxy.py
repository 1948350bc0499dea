"""A recording HTTP proxy that forwards nothing: what a council's firewall would log.

A process started with HTTPS_PROXY/HTTP_PROXY pointing here sends every request for a host not
in NO_PROXY to it first (`CONNECT host:443` for HTTPS, the absolute URL for plain HTTP). The
proxy writes the destination down and answers 403, so nothing leaves the machine and the test
can say exactly which foreign hosts the process tried to reach.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class RecordingProxy:
    url: str = ""
    destinations: list[str] = field(default_factory=list)  # "host:port", in arrival order

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1").split()
            if len(request_line) == 3:
                method, target, _ = request_line
                if method == "CONNECT":
                    self.destinations.append(target)
                else:
                    parts = urlsplit(target)
                    self.destinations.append(f"{parts.hostname}:{parts.port or 80}")
            writer.write(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def env(self) -> dict[str, str]:
        """Proxy settings for a process: every foreign host through here, loopback direct."""
        env = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = self.url
        return env


@asynccontextmanager
async def recording_proxy() -> AsyncIterator[RecordingProxy]:
    proxy = RecordingProxy()
    server = await asyncio.start_server(proxy._handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        server.close()
        await server.wait_closed()
