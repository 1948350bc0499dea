"""Trying the whole mail loop on one machine: ask in Teams, the forward lands as an .eml, a
moderator's reply .eml goes in with `cli.py mail receive`, the running bot delivers the answer."""

from __future__ import annotations

import asyncio
import os
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from store.schema import utcnow
from tests.e2e.conftest import OFF_TOPIC, Bot, eventually, resolved

ROOT = Path(__file__).resolve().parents[2]
MODERATOR = "staff-questions@council.example"  # MODERATORS_ADDRESS in the e2e settings


async def receive(bot: Bot, eml: Path) -> tuple[int, str, str]:
    """`cli.py mail receive` as an operator runs it beside the bot: same database and settings."""
    env = {**os.environ, "DATABASE_URL": bot.settings.database_url, "MODERATORS_ADDRESS": MODERATOR,
           "MAIL_OUTBOX_DIR": str(bot.outbox_dir)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "cli.py"), "mail", "receive", str(eml), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def reply_to(forward: Path, text: str, *, sender: str = MODERATOR) -> bytes:
    """What a moderator's mail client writes when they answer the forwarded question."""
    original = message_from_bytes(forward.read_bytes(), policy=policy.default)
    reply = EmailMessage(policy=policy.SMTP)
    reply["From"] = f"Mo Derator <{sender}>"
    reply["To"] = original["From"]
    reply["Subject"] = f"RE: {original['Subject']}"
    reply["Date"] = format_datetime(utcnow())
    reply["Message-ID"] = make_msgid(domain="council.example")
    reply["In-Reply-To"] = original["Message-ID"]
    reply["References"] = original["Message-ID"]
    reply.set_content(f"{text}\n\nKind regards,\nMo\n\n-----Original Message-----\n{OFF_TOPIC}\n")
    return reply.as_bytes()


async def test_a_reply_eml_received_by_the_cli_reaches_the_asker_in_teams_once(bot: Bot, tmp_path: Path) -> None:
    asker = bot.channel.new_user("Sam Staff")
    asked = await bot.say(asker, OFF_TOPIC)

    async def forwarded() -> list[Path]:
        return bot.mails()

    [forward] = await eventually(forwarded, what="the forwarded question in the outbox folder")
    reply = tmp_path / "reply.eml"
    reply.write_bytes(reply_to(forward, "Yes: the choir sings on 12 December at 6pm."))

    code, out, err = await receive(bot, reply)
    assert (code, out, err) == (0, "answer to Q-1\n", "")

    async def answered() -> list[Any]:
        return [r for r in bot.channel.connector.posts() if r.text and "12 December" in r.text]

    [answer] = await eventually(answered, what="the answer in the asker's chat")
    assert answer.conversation_id == asked["conversation"]["id"]
    assert "An answer to your question Q-1" in answer.text
    assert "Kind regards" not in answer.text and "Original Message" not in answer.text

    again = await receive(bot, reply)
    assert again == (0, f"already received {_message_id(reply)} (answer to Q-1); nothing changed\n", "")
    await bot.drained()
    assert len(await answered()) == 1, "the answer is delivered once"
    [row] = await bot.question_rows()
    assert row["status"] == "answered"


async def test_a_mail_from_someone_else_is_ignored_and_says_why(bot: Bot, tmp_path: Path) -> None:
    await bot.say(bot.channel.new_user("Sam Staff"), OFF_TOPIC)
    [forward] = await eventually(lambda: resolved(bot.mails()), what="the forward")
    reply = tmp_path / "reply.eml"
    reply.write_bytes(reply_to(forward, "I think it is on Friday.", sender="someone@elsewhere.example"))
    code, out, _ = await receive(bot, reply)
    assert code == 0 and out.startswith("ignored: ")
    await bot.drained()
    assert not [r for r in bot.channel.connector.posts() if r.text and "Friday" in r.text]
    assert [row["status"] for row in await bot.question_rows()] == ["forwarded"]


def _message_id(path: Path) -> str:
    return str(message_from_bytes(path.read_bytes(), policy=policy.default)["Message-ID"])
