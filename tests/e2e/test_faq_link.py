"""A moderator links a forwarded question to the FAQ entry that answers it; the bot learns it."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from cli import cli
from config.settings import BUNDLED_FAQ
from faq.store import load_faq
from tests.e2e.conftest import Bot, eventually, resolved

# Forwarded by today's bundled FAQ, both of them; once the first is linked to the entry, the
# second (someone else, other words) is answered from the FAQ.
LINKED = "my laptop screen is cracked, who fixes it"
PARAPHRASE = "the display on my work laptop is broken, who repairs it"
ENTRY = "it-equipment"


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"FAQ_RELOAD_SECONDS": "0.5"}


def _says(post: object, text: str) -> bool:
    return text in (getattr(post, "text", None) or "") or text in str(getattr(post, "attachments", None))


async def test_a_linked_question_is_answered_once_and_its_paraphrase_from_the_faq(bot: Bot) -> None:
    # the answer's last sentence: plain words, which Teams markdown leaves as they are
    answer = load_faq(BUNDLED_FAQ).get(ENTRY).answer.split(". ")[-1]  # type: ignore[union-attr]
    asker = bot.channel.new_user("Lin Laptop")
    await bot.say(asker, LINKED)
    [forwarded] = await bot.channel.connector.wait_for(1)
    assert "sent your question to the team" in forwarded.text and "Q-1" in forwarded.text
    await bot.drained()

    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["faq", "link", "Q-1", ENTRY, "--database-url", bot.settings.database_url]
    )
    assert result.exit_code == 0, result.output
    await eventually(lambda: resolved(any(_says(p, answer) for p in bot.channel.connector.posts())),
                     what="the entry's answer to the asker")
    await bot.drained()
    assert sum(_says(p, answer) for p in bot.channel.connector.posts()) == 1  # once

    async def paraphrase_answered() -> object | None:
        activity = await bot.say(bot.channel.new_user("Pat Other"), PARAPHRASE)
        reply = await eventually(lambda: resolved(next(
            (p for p in bot.channel.connector.posts() if p.activity_id == activity["id"]), None)),
            what="the bot's reply")
        return reply if _says(reply, answer) else None

    reply = await eventually(paraphrase_answered, timeout=30, what="the paraphrase answered from the FAQ")
    assert "No, send it to the team" in str(reply.attachments)  # the FAQ's answer card
