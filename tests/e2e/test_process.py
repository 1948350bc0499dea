"""The bot as an operator starts it: `python app.py` with environment variables."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.support.process import ROOT, bot_process, free_port, read_until, wait_healthy


async def test_without_credentials_it_serves_only_on_loopback_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    env = {"HOST": "0.0.0.0", "PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
           "MAIL_OUTBOX_DIR": str(tmp_path / "outbox")}
    async with bot_process(env) as process:
        log = await read_until(process, "serving on")
        assert "authentication is OFF" in log
        assert f"serving on http://127.0.0.1:{port}" in log
        await wait_healthy(f"http://127.0.0.1:{port}")


async def test_an_invalid_faq_file_stops_the_bot_with_a_clear_error(tmp_path: Path) -> None:
    faq = tmp_path / "faq.yaml"
    faq.write_text(
        "entries:\n"
        "  - id: pay-day\n    question: When is pay day?\n    answer: The 20th.\n"
        "  - id: pay-day\n    question: When do I get paid?\n    answer: The 20th.\n"
    )
    env = {"FAQ_PATH": str(faq), "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db"}
    async with bot_process(env) as process:
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    text = output.decode()
    assert str(faq) in text and "pay-day" in text and "duplicate" in text


async def test_make_runs_migration_step_creates_the_schema(tmp_path: Path) -> None:
    """`make run` calls `cli.py db upgrade` before starting the bot; running it twice is harmless."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/var/bot.db"}
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "cli.py", "db", "upgrade", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, output.decode()
        assert "up to date" in output.decode()
    assert (tmp_path / "var" / "bot.db").stat().st_size > 0
