"""`cli.py` as an operator runs it beside the running bot, with the environment it is given."""

from __future__ import annotations

import asyncio
import os
import sys

from tests.support.process import ROOT


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `cli.py ARGS` with `env` over this process's environment."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "cli.py"), *args, cwd=ROOT, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
