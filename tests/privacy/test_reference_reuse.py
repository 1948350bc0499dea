"""A reference is never reused: after the newest questions are erased, the next colleague gets
a new number, their question is forwarded, and a moderator's reply to the erased question's
mail is ignored, never delivered to them."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from tests.e2e.conftest import OFF_TOPIC, Bot, eventually, resolved
from tests.e2e.test_offline_mail import MODERATOR, reply_to
from tests.privacy.cli import run_cli

ANOTHER_QUESTION = "Will the staff choir rehearse in the Shire Hall ballroom on Thursday evening?"
ANSWER = "Yes: the choir sings on 12 December at 6pm."


async def cli(bot: Bot, *args: str) -> tuple[int, str, str]:
    return await run_cli(*args, env={"DATABASE_URL": bot.settings.database_url, "MODERATORS_ADDRESS": MODERATOR,
                                     "MAIL_OUTBOX_DIR": str(bot.outbox_dir)})


def subjects(bot: Bot) -> list[str]:
    return [str(message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"]) for path in bot.mails()]


async def test_an_erased_number_never_comes_back_and_a_reply_to_its_mail_reaches_nobody(
    bot: Bot, tmp_path: Path
) -> None:
    jo = bot.channel.new_user("Jo Bloggs")
    await bot.say(jo, OFF_TOPIC)
    [forward] = await eventually(lambda: resolved(bot.mails()), what="Jo's question forwarded")
    moderators_copy = forward.read_bytes()  # what the moderators' mail client keeps
    await bot.drained()

    assert jo.email
    code, out, err = await cli(bot, "subject", "erase", "--user", jo.email, "--yes")
    assert (code, err) == (0, ""), out
    assert "  questions_deleted: 1" in out

    sam = bot.channel.new_user("Sam Other")
    asked = await bot.say(sam, ANOTHER_QUESTION)

    async def sams_reference() -> list[Any]:
        return [p for p in bot.channel.connector.posts() if p.conversation_id == asked["conversation"]["id"]]

    [ack] = await eventually(sams_reference, what="Sam's acknowledgement")
    assert "Q-2" in ack.text and "Q-1" not in ack.text
    await eventually(lambda: resolved([s for s in subjects(bot) if s.startswith("[Q-2]")]),
                     what="Sam's question forwarded to the moderators")

    reply = tmp_path / "reply.eml"
    reply.write_bytes(reply_to_bytes(moderators_copy, tmp_path))
    code, out, err = await cli(bot, "mail", "receive", str(reply))
    assert (code, out, err) == (0, "ignored: a reply to Q-1, which is no longer held (erased or purged)\n", "")
    await bot.drained()
    assert [p.text for p in await sams_reference()] == [ack.text], "nothing reached Sam but the acknowledgement"
    assert not [p for p in bot.channel.connector.posts() if p.text and "12 December" in p.text]
    assert [row["status"] for row in await bot.question_rows()] == ["forwarded"]


def reply_to_bytes(forward: bytes, folder: Path) -> bytes:
    """A moderator's reply to a forward of which only the moderators' copy is left."""
    copy = folder / "moderators-copy.eml"
    copy.write_bytes(forward)
    return reply_to(copy, ANSWER)
