"""Commands that explain themselves, and cards as people see them in Teams (captured at the
connector and from invoke responses)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.cards.test_cards import VALIDATOR, _shown_text
from tests.e2e.conftest import Bot, eventually, resolved
from tests.e2e.test_live_events import (
    ADMIN_EMAIL,
    MODERATORS_CHANNEL,
    _button,
    _cards_in,
    _click,
    _moderated_question,
    _staff,
)

HOSTILE = "Is [the bonus](https://evil.example/pay) **really** paid via www.evil.example this year?"


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"ADMINS": ADMIN_EMAIL}


async def _reply_to(bot: Bot, user: Any, text: str) -> str:
    before = len(bot.channel.connector.posts())
    await bot.say(user, text)
    [*_, reply] = await bot.channel.connector.wait_for(before + 1)
    return reply.text or ""


async def test_help_lists_the_commands_each_person_may_use_with_an_example(bot: Bot) -> None:
    staff = bot.channel.new_user("Sid Staff", email="sid@council.example")
    text = await _reply_to(bot, staff, "help")
    for command, example in (("ask anonymously", "ask anonymously Will"), ("ask privately", "ask privately"),
                             ("my questions", "my questions"), ("me too", "me too Q-12")):
        assert f"**{command}**" in text and example in text
    assert "open event" not in text and "grant moderator" not in text and "moderate here" not in text
    assert "I keep your question" in text and "days after" in text  # what is kept about them, and for how long
    admin = bot.channel.new_user("Ada Admin", email=ADMIN_EMAIL)
    text = await _reply_to(bot, admin, "help")
    for heading, command in (("Moderators", "moderate here"), ("Hosts", "open event"), ("Hosts", "board here"),
                             ("Admins", "grant moderator")):
        assert f"**{heading}**" in text and f"**{command}**" in text
    assert await bot.question_rows() == []


async def test_a_command_without_its_argument_asks_for_it_and_records_nothing(bot: Bot) -> None:
    user = bot.channel.new_user("Mia Menu", email="mia@council.example")
    for text, asks_for in (
        ("ask anonymously", "Type your question after it"),
        ("ask privately", "Type your question after it"),
        ("me too", "Say which question"),
        ("open event", "Give the event's title"),
        ("grant moderator", "Say the role and whose email"),
    ):
        reply = await _reply_to(bot, user, text)
        assert asks_for in reply and "Nothing was recorded" in reply, text
    await bot.drained()
    assert await bot.question_rows() == [] and bot.mails() == []


async def test_text_that_starts_like_a_command_gets_did_you_mean_and_anything_else_is_a_question(bot: Bot) -> None:
    user = bot.channel.new_user("Nat Nearmiss", email="nat@council.example")
    for text, suggestion in (
        ("my questions?", "my questions"),
        ("grant admin x", "grant moderator"),
        ("show Q3 now", None),
        ("queue", None),
    ):
        reply = await _reply_to(bot, user, text)
        assert "didn't recognise that command" in reply and "nothing was recorded" in reply, text
        assert "**help**" in reply and (suggestion is None or f"Did you mean **{suggestion}" in reply), text
    # `show Q-n` is a moderators' command: anyone else is told so, and nothing is recorded either.
    assert "needs the moderator role" in await _reply_to(bot, user, "show Q-3")
    await bot.drained()
    assert await bot.question_rows() == [] and bot.mails() == []
    await bot.say(user, "Show me how to book annual leave for next month please")
    await bot.drained()
    assert [row["text"] for row in await bot.question_rows()] == [
        "Show me how to book annual leave for next month please"
    ]


def _no_live_colleague_text(activity: dict[str, Any]) -> None:
    """What the connector received shows the colleague's words as typed, never a link."""

    shown = SimpleNamespace(
        text=activity.get("text"),
        summary=activity.get("summary"),
        attachments=[SimpleNamespace(content=a["content"]) for a in activity.get("attachments") or []],
    )
    markdown, plain = _shown_text(shown)
    for text in markdown + plain:
        assert "https://evil" not in text and "www.evil" not in text, repr(text)
    for text in markdown:  # plain text shows "[the bonus](" as typed; Markdown must not read it
        assert "**really**" not in text and "](https" not in text, repr(text)


async def test_a_colleague_s_links_and_formatting_are_never_live_in_cards_or_replies(bot: Bot) -> None:
    people = await _staff(bot)
    asker, _, _ = await _moderated_question(bot, people)
    await bot.say(asker, HOSTILE)
    hostile_card = await eventually(
        lambda: resolved(next((c for c in _cards_in(bot, MODERATORS_CHANNEL) if "evil" in str(c.body)), None)),
        what="the card",
    )
    content = hostile_card.attachments[0]["content"]
    assert not list(VALIDATOR.iter_errors({k: v for k, v in content.items() if k != "msteams"}))
    _no_live_colleague_text(hostile_card.body)
    listing = await _reply_to(bot, asker, "my questions")
    assert "Is \\[the bonus\\]" in listing
    _no_live_colleague_text({"text": listing})


async def test_helpful_on_an_answer_replaces_its_buttons_with_what_was_said(bot: Bot) -> None:
    people = await _staff(bot)
    asker, here, card = await _moderated_question(bot, people)
    send = _button(card, "Send answer")
    assert (await bot.post(_click(bot, people["mod1"], card, here, send, answer="Yes, 6pm."))).status == 200
    answer = await eventually(
        lambda: resolved(next((r for r in bot.channel.connector.posts() if r.text and "Yes, 6pm." in r.text), None)),
        what="the answer",
    )
    helpful = _button(answer, "Helpful")
    assert helpful["fallback"]["type"] == "Action.Submit"
    response = await bot.post(
        bot.channel.activities.invoke_action(asker, helpful["verb"], helpful["data"], reply_to_id=answer.created_id)
    )
    body = await response.json()
    assert (body["statusCode"], body["type"]) == (200, "application/vnd.microsoft.card.adaptive")
    assert "✓ You said this answer helped." in str(body["value"]) and "actions" not in body["value"]
    assert not list(VALIDATOR.iter_errors(body["value"]))


async def test_a_tampered_click_is_refused_in_either_form_and_records_nothing(bot: Bot) -> None:
    """Card data with an unknown verb, a key no card sends or a value of the wrong type: a 400
    for Action.Execute, the help text for Action.Submit, and the real click still counts."""
    people = await _staff(bot)
    asker, here, card = await _moderated_question(bot, people)
    send = _button(card, "Send answer")
    assert (await bot.post(_click(bot, people["mod1"], card, here, send, answer="6pm."))).status == 200
    answer = await eventually(
        lambda: resolved(next((r for r in bot.channel.connector.posts() if r.text and "6pm." in r.text), None)),
        what="the answer",
    )
    helpful = _button(answer, "Helpful")
    await bot.drained()
    rows, updates = await bot.question_rows(), bot.channel.connector.recorded("update", ok=True)
    tampered = {
        "an unknown verb": {**helpful["data"], "action": "delete"},
        "a key no card sends": {**helpful["data"], "recorded_by": "someone else"},
        "helpful as text": {**helpful["data"], "helpful": "yes"},
        "an id as text": {**helpful["data"], "answer_id": str(helpful["data"]["answer_id"])},
        "an id missing": {k: v for k, v in helpful["data"].items() if k != "answer_id"},
    }
    for what, data in tampered.items():
        invoke = bot.channel.activities.invoke_action(asker, data["action"], data, reply_to_id=answer.created_id)
        response = await bot.post(invoke)
        body = await response.json()
        assert (response.status, body["statusCode"], body["value"]["code"]) == (400, 400, "BadRequest"), what
        before = len(bot.channel.connector.posts())
        submit = bot.channel.activities.card_submit(asker, data, reply_to_id=answer.created_id)
        assert (await bot.post(submit)).status == 200
        [*_, reply] = await bot.channel.connector.wait_for(before + 1)
        assert "I collect colleagues' questions" in (reply.text or ""), what
    await bot.drained()
    assert await bot.question_rows() == rows
    assert bot.channel.connector.recorded("update", ok=True) == updates  # no card lost its buttons
    response = await bot.post(
        bot.channel.activities.invoke_action(asker, helpful["verb"], helpful["data"], reply_to_id=answer.created_id)
    )
    assert "✓ You said this answer helped." in str((await response.json())["value"])  # nothing counted before


async def test_a_claimed_question_can_be_released_and_its_card_offers_claim_again(bot: Bot) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    claim = _button(card, "Claim")
    assert claim["associatedInputs"] == "none"  # claiming never asks for the answer box
    body = await (await bot.post(_click(bot, people["mod1"], card, here, claim))).json()
    assert body["value"] == "You claimed Q-1."
    claimed = await eventually(
        lambda: resolved(
            next((u for u in _cards_in(bot, MODERATORS_CHANNEL, "update") if "Release" in str(u.body)), None)
        ),
        what="Release",
    )
    [row] = await bot.question_rows()
    assert (row["status"], row["claimed_by"]) == ("claimed", "Mo One")
    release = _button(claimed, "Release")
    body = await (await bot.post(_click(bot, people["mod1"], claimed, here, release))).json()
    assert body["value"] == "You released Q-1: any moderator can answer it."
    [row] = await bot.question_rows()
    assert (row["status"], row["claimed_by"]) == ("forwarded", None)
    await bot.drained()
    final = _cards_in(bot, MODERATORS_CHANNEL, "update")[-1].attachments[0]["content"]
    assert [a["title"] for a in final["actions"]] == ["Send answer", "Claim"]
