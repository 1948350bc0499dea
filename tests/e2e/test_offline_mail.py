"""Trying the whole mail loop on one machine: ask in Teams, the forward lands as an .eml, a
moderator's reply .eml goes in with `cli.py mail receive`, the running bot delivers the answer."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from tests.e2e.conftest import OFF_TOPIC, Bot, eventually, resolved

ROOT = Path(__file__).resolve().parents[2]
MODERATOR = "staff-questions@council.example"  # MODERATORS_ADDRESS in the e2e settings
#: What Exchange Online stamps on mail sent from a mailbox of the organisation.
INTERNAL = {
    "Authentication-Results": "dkim=none (message not signed) header.d=none;dmarc=none action=none "
    "header.from=council.example;",
    "X-MS-Exchange-Organization-AuthAs": "Internal",
    "X-MS-Exchange-Organization-AuthSource": "AM9PR07MB7105.eurprd07.prod.outlook.com",
}
#: What it stamps on a mail from the internet that claims to be from the organisation.
SPOOFED = {
    "Authentication-Results": "spf=fail (sender IP is 203.0.113.66) smtp.mailfrom=council.example; dkim=none "
    "(message not signed) header.d=none;dmarc=fail action=oreject header.from=council.example;compauth=fail reason=000",
    "X-MS-Exchange-Organization-AuthAs": "Anonymous",
    "X-MS-Exchange-Organization-AuthSource": "AM4PEPF00027A6C.eurprd04.prod.outlook.com",
}


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


def reply_to(
    forward: Path, text: str, *, sender: str = MODERATOR, verdict: dict[str, str] = INTERNAL
) -> bytes:
    """What a moderator's mail client writes when they answer the forwarded question, as it
    reaches the mailbox with Exchange's verdict on top."""
    original = message_from_bytes(forward.read_bytes(), policy=policy.default)
    reply = EmailMessage(policy=policy.SMTP)
    for name, value in verdict.items():
        reply[name] = value
    reply["From"] = f"Mo Derator <{sender}>"
    reply["To"] = original["From"]
    reply["Subject"] = f"RE: {original['Subject']}"
    reply["Date"] = format_datetime(datetime.now(UTC))
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
    reply.write_bytes(reply_to(forward, "I think it is on Friday.", sender="jo.bloggs@council.example"))
    code, out, _ = await receive(bot, reply)
    assert code == 0 and out.startswith("ignored: ")
    await bot.drained()
    assert not [r for r in bot.channel.connector.posts() if r.text and "Friday" in r.text]
    assert [row["status"] for row in await bot.question_rows()] == ["forwarded"]


async def test_a_spoofed_moderator_reply_eml_is_not_trusted_and_never_delivered(bot: Bot, tmp_path: Path) -> None:
    """From the moderators' own address, [Q-1] and In-Reply-To right, but Exchange says it came
    from the internet and failed SPF, DKIM and DMARC: nothing is stored or sent."""
    await bot.say(bot.channel.new_user("Sam Staff"), OFF_TOPIC)
    [forward] = await eventually(lambda: resolved(bot.mails()), what="the forward")
    await bot.drained()
    posts_before, outbox_before = len(bot.channel.connector.posts()), await bot.outbox_count()
    for number, verdict in enumerate((SPOOFED, {})):  # Exchange's verdict on a spoof; none at all
        spoof = tmp_path / f"spoof-{number}.eml"
        spoof.write_bytes(reply_to(forward, "Urgent: re-enter your password at http://evil.example", verdict=verdict))
        code, out, _ = await receive(bot, spoof)
        assert code == 0 and out.startswith("not trusted: "), out
    await bot.drained()
    assert len(bot.channel.connector.posts()) == posts_before
    assert await bot.outbox_count() == outbox_before
    assert [row["status"] for row in await bot.question_rows()] == ["forwarded"]


def _message_id(path: Path) -> str:
    return str(message_from_bytes(path.read_bytes(), policy=policy.default)["Message-ID"])
