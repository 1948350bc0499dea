"""Run by Python at start-up in a process with this folder on PYTHONPATH (tests only).

Appends every TCP/UDP connection the process opens and every host name it looks up to the file
named by $RECORD_CONNECTIONS_TO, one line each ("connect 127.0.0.1 5432", "lookup example.org
443"), through Python's audit hooks. The recording proxy sees what honours HTTPS_PROXY (requests,
native libraries using curl); this sees what does not (aiohttp's client ignores the proxy
variables unless told otherwise), so together they show every destination.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from typing import Any

_PATH = os.environ.get("RECORD_CONNECTIONS_TO")


def _install(path: str) -> None:
    log = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (open for the process)
    lock = threading.Lock()

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect" and args[0].family in (socket.AF_INET, socket.AF_INET6):
            line = f"connect {args[1][0]} {args[1][1]}\n"
        elif event == "socket.getaddrinfo":
            host = args[0].decode() if isinstance(args[0], bytes) else args[0]
            line = f"lookup {host} {args[1]}\n"
        else:
            return
        with lock:
            log.write(line)

    sys.addaudithook(hook)


if _PATH:
    _install(_PATH)
