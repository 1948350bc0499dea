"""A moderator answers a forwarded question with an FAQ entry, from its card in Teams or by a
`#faq ENTRY-ID` mail reply: the asker gets the entry's answer once, and the bot learns the
wording at once (the periodic reload is set to an hour here, so only the link's rebuild can
explain a paraphrase answered from the FAQ)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from config.settings import BUNDLED_FAQ
from faq.store import load_faq
from store.db import create_engine
from store.schema import faq_phrasings
from tests.e2e.conftest import Bot, bot_settings, eventually, graph_mail_env, resolved, serving
from tests.e2e.test_live_events import (
    ADMIN_EMAIL,
    MODERATORS_CHANNEL,
    _actions,
    _button,
    _cards_in,
    _click,
    _command,
    _staff,
)
from tests.support.channel import FakeChannel, TeamsUser
from tests.support.graph import GraphWorld

# Forwarded by today's bundled FAQ, both of them; once the first is linked to the entry, the
# second (someone else, other words) is answered from the FAQ.
LINKED = "my laptop screen is cracked, who fixes it"
PARAPHRASE = "the display on my work laptop is broken, who repairs it"
ENTRY = "it-equipment"
# the entry's answer's last sentence: plain words, which Teams markdown leaves as they are
ANSWER = load_faq(BUNDLED_FAQ).get(ENTRY).answer.split(". ")[-1]  # type: ignore[union-attr]
HOUR = "3600"


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"ADMINS": ADMIN_EMAIL, "FAQ_RELOAD_SECONDS": HOUR}


def _says(post: Any, text: str) -> bool:
    return text in (getattr(post, "text", None) or "") or text in str(getattr(post, "attachments", None))


def _to(bot: Bot, asked: dict[str, Any], text: str) -> int:
    """How many posts to the chat a question was asked in say `text`."""
    chat = asked["conversation"]["id"]
    return sum(_says(p, text) for p in bot.channel.connector.posts() if p.conversation_id == chat)


async def _phrasings(bot: Bot) -> int:
    engine = create_engine(bot.settings.database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(faq_phrasings))).scalar_one()
    finally:
        await engine.dispose()


async def _answered_from_the_faq(bot: Bot, text: str) -> bool:
    """Ask `text` as a new colleague: whether the FAQ's answer card with the entry's answer came."""
    activity = await bot.say(bot.channel.new_user("Pat Other"), text)
    reply = await eventually(lambda: resolved(next(
        (p for p in bot.channel.connector.posts() if p.activity_id == activity["id"]), None)), what="the bot's reply")
    return _says(reply, ANSWER) and "No, send it to the team" in str(reply.attachments)


async def _forwarded_card(bot: Bot, people: dict[str, TeamsUser]) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """The question asked (its activity), the moderators' channel and the question's card."""
    here = await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    asker = await bot.say(bot.channel.new_user("Lin Laptop"), LINKED)
    card = await eventually(lambda: resolved(next(iter(_cards_in(bot, MODERATORS_CHANNEL)), None)),
                            what="the moderation card")
    return asker, here, card


async def test_a_moderator_answers_with_an_faq_entry_on_the_card_and_the_bot_learns_it(bot: Bot) -> None:
    people = await _staff(bot)
    asker, here, card = await _forwarded_card(bot, people)
    assert not await _answered_from_the_faq(bot, PARAPHRASE)  # today: forwarded
    pick = _button(card, "Answer with this entry")
    [choices] = [e for panel in card.attachments[0]["content"]["body"] if panel["type"] == "ActionSet"
                 for a in panel["actions"] if a["title"] == "Answer with FAQ entry"
                 for e in a["card"]["body"] if e["type"] == "Input.ChoiceSet"]
    assert ENTRY in [c["value"] for c in choices["choices"]]  # among the nearest entries offered

    # someone without the moderator role: refused, nothing changes
    stranger = bot.channel.new_user("Nora Nobody")
    body = await (await bot.post(_click(bot, stranger, card, here, pick, faq_entry=ENTRY, faq_entry_id=""))).json()
    assert "needs the moderator role" in body["value"] and "Nothing was changed" in body["value"]
    await bot.drained()
    assert await _phrasings(bot) == 0 and _to(bot, asker, ANSWER) == 0
    assert [row["status"] for row in await bot.question_rows()] == ["forwarded", "forwarded"]

    click = _click(bot, people["mod1"], card, here, pick, faq_entry=ENTRY, faq_entry_id="")
    body = await (await bot.post(click)).json()
    assert body["value"] == f"Q-1 is now a phrasing of {ENTRY}; its answer is on its way to the asker."
    await eventually(lambda: resolved(_to(bot, asker, ANSWER)), what="the entry's answer to the asker")
    # the same click delivered again, and a second moderator's: the answer is sent once
    assert (await bot.post(click)).status == 200
    again = _click(bot, people["mod2"], card, here, pick, faq_entry="*", faq_entry_id=ENTRY)
    body = await (await bot.post(again)).json()
    assert body["value"] == "Q-1 was linked to an FAQ entry before; nothing changed."
    await bot.drained()
    assert _to(bot, asker, ANSWER) == 1 and await _phrasings(bot) == 1
    first = (await bot.question_rows())[0]
    assert (first["status"], first["acted_by"]) == ("answered", "Mo One")
    updated = _cards_in(bot, MODERATORS_CHANNEL, "update")[-1].attachments[0]["content"]
    assert f"'text': '{ENTRY}'" in str(updated) and "Answered with FAQ entry: " in str(updated)
    assert "Answer with FAQ entry" not in str(updated) and "Add to FAQ" not in str(updated)

    # learned at once: the rebuild queued with the link, not the hourly reload
    assert await eventually(lambda: _answered_from_the_faq(bot, PARAPHRASE), timeout=30,
                            what="the paraphrase answered from the FAQ")


@pytest.mark.parametrize("case", ["unknown entry", "private", "nothing given"])
async def test_answer_with_faq_entry_refuses_clearly_and_changes_nothing(bot: Bot, case: str) -> None:
    people = await _staff(bot)
    asker, here, card = await _forwarded_card(bot, people)
    pick = _button(card, "Answer with this entry")
    inputs = {"unknown entry": {"faq_entry": "*", "faq_entry_id": "no-such-entry"},
              "private": {"faq_entry": ENTRY, "faq_entry_id": ""},
              "nothing given": {"faq_entry": "*", "faq_entry_id": ""}}[case]
    if case == "private":  # marked private by another moderator since the card was drawn
        [private] = [a for a in _actions(card.attachments[0]["content"])
                     if (a["title"], a["type"]) == ("Mark private", "Action.Execute")]
        await bot.post(_click(bot, people["mod2"], card, here, private, private_reason="HR matter"))
    body = await (await bot.post(_click(bot, people["mod1"], card, here, pick, **inputs))).json()
    said = {"unknown entry": "The FAQ has no entry 'no-such-entry'", "private": "Q-1 is private",
            "nothing given": "Type the entry's id"}[case]
    assert said in body["value"] and "Nothing was changed" in body["value"]
    await bot.drained()
    assert await _phrasings(bot) == 0 and _to(bot, asker, ANSWER) == 0
    assert (await bot.question_rows())[0]["status"] == "forwarded"


async def test_faq_search_lists_entry_ids_for_moderators_only(bot: Bot) -> None:
    people = await _staff(bot)
    before = len(bot.channel.connector.posts())
    await bot.say(people["mod1"], "faq search laptop")
    await bot.say(bot.channel.new_user("Sam Staff"), "faq search laptop")
    [*_, listing, refusal] = await bot.channel.connector.wait_for(before + 2)
    assert f"**{ENTRY}**" in listing.text
    assert "needs the moderator role" in refusal.text and ENTRY not in refusal.text
    before = len(bot.channel.connector.posts())
    await bot.say(people["mod1"], "faq search screen cracked who repairs")  # no entry has every word
    [*_, nearest] = await bot.channel.connector.wait_for(before + 1)
    assert "nearest in meaning" in nearest.text and f"**{ENTRY}**" in nearest.text


# --- by mail ----------------------------------------------------------------------------------

MODERATOR = "mo.one@council.example"


@pytest.fixture
async def link_mail_bot(
    channel: FakeChannel, graph_world: GraphWorld, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Bot]:
    """Mail through Graph; a moderator is whoever holds the role (granted in Teams), not the
    whole domain, so a colleague's reply is not a moderator's."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(channel.ca_bundle))
    env = {k: v for k, v in graph_mail_env(graph_world).items() if k != "MODERATOR_SENDERS"}
    settings = bot_settings(channel, database_url, tmp_path, MODERATORS_ADDRESS="", ADMINS=ADMIN_EMAIL,
                            FAQ_RELOAD_SECONDS=HOUR, **env)
    async with serving(channel, settings) as bot:
        await eventually(bot.mailbox_baseline_taken, what="the first mailbox sync")
        admin = bot.channel.new_user("Ada Admin", email=ADMIN_EMAIL)
        await bot.say(admin, f"grant moderator {MODERATOR}")
        await bot.channel.connector.wait_for(1)
        yield bot


async def _forward(bot: Bot, world: GraphWorld) -> tuple[dict[str, Any], dict[str, Any]]:
    asker = await bot.say(bot.channel.new_user("Lin Laptop", email="lin.laptop@council.example"), LINKED)
    forward = await eventually(lambda: resolved(next(
        (m for m in world.graph.sent_items() if m["subject"].startswith("[Q-1]")), None)), what="the forward")
    await bot.drained()
    return asker, forward


def _reply(world: GraphWorld, forward: dict[str, Any], sender: str, text: str, **options: Any) -> str:
    return world.graph.deliver_to_inbox(sender, f"RE: {forward['subject']}", sender_name="Mo One", text=text,
                                        in_reply_to=forward["internetMessageId"], **options)


async def _handled(world: GraphWorld, imm: str) -> bool:
    return bool(world.graph.message(imm).get("categories"))


async def test_a_faq_mail_reply_answers_with_the_entry_once_and_the_bot_learns_it(
    link_mail_bot: Bot, graph_world: GraphWorld
) -> None:
    bot = link_mail_bot
    asker, forward = await _forward(bot, graph_world)
    signature = "\n\nKind regards,\nMo One\n\nFrom: Staff questions\nSent: today\n" + LINKED
    first = _reply(graph_world, forward, MODERATOR, f"#faq {ENTRY}{signature}")
    await eventually(lambda: resolved(_to(bot, asker, ANSWER)), timeout=20, what="the entry's answer to the asker")
    # a second #faq reply (or the same mail read again) sends nothing more
    second = _reply(graph_world, forward, MODERATOR, f"#FAQ {ENTRY}")
    await eventually(lambda: _handled(graph_world, second), what="the second reply handled")
    await bot.drained()
    assert await _handled(graph_world, first)
    assert _to(bot, asker, ANSWER) == 1 and await _phrasings(bot) == 1
    [row, *_] = await bot.question_rows()
    assert (row["status"], row["acted_by"]) == ("answered", "Mo One")
    assert not any("#faq" in (p.text or "").lower() for p in bot.channel.connector.posts())  # never an answer
    assert await eventually(lambda: _answered_from_the_faq(bot, PARAPHRASE), timeout=30,
                            what="the paraphrase answered from the FAQ")


@pytest.mark.parametrize("case", ["unknown entry", "not a moderator", "spoofed"])
async def test_a_faq_mail_reply_that_cannot_link_changes_nothing(
    link_mail_bot: Bot, graph_world: GraphWorld, case: str
) -> None:
    bot = link_mail_bot
    asker, forward = await _forward(bot, graph_world)
    sender, entry, options = {
        "unknown entry": (MODERATOR, "no-such-entry", {}),
        "not a moderator": ("pat.colleague@council.example", ENTRY, {}),
        "spoofed": (MODERATOR, ENTRY, {"from_internet": True}),  # Exchange does not vouch for it
    }[case]
    mail = _reply(graph_world, forward, sender, f"#faq {entry}", **options)
    await eventually(lambda: _handled(graph_world, mail), what="the reply handled")
    await bot.drained()
    assert await _phrasings(bot) == 0 and _to(bot, asker, ANSWER) == 0
    assert (await bot.question_rows())[0]["status"] == "forwarded"
    told = [m for m in graph_world.graph.sent_items() if "nothing was changed" in m["subject"]]
    if case == "unknown entry":  # the moderator is told why, in the thread
        [mail_back] = told
        assert mail_back["toRecipients"][0]["emailAddress"]["address"] == MODERATOR
        assert "The FAQ has no entry 'no-such-entry'" in mail_back["body"]["content"]
    else:
        assert told == []
