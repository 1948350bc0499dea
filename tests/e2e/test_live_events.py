"""Hosts run events, moderators work a queue in their channel, answers reach askers."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from handlers.board import INTERVAL_SECONDS
from tests.e2e.conftest import OFF_TOPIC, Bot, board_counts, eventually, resolved
from tests.support.channel import TeamsUser

ADMIN_EMAIL = "admin@council.example"
MODERATORS_CHANNEL = "19:moderators@thread.tacv2"
HOSTS_CHANNEL = "19:hosts@thread.tacv2"
# Questions in the live-board burst; BOARD_BURST_QUESTIONS=1000 for the full burst (slow).
BURST = int(os.environ.get("BOARD_BURST_QUESTIONS", "120"))


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"ADMINS": ADMIN_EMAIL}


async def _command(bot: Bot, user: TeamsUser, text: str, channel_id: str) -> dict[str, Any]:
    activity = bot.channel.activities.channel_mention(user, text, channel_id=channel_id)
    response = await bot.post(activity)
    assert response.status == 200, await response.text()
    return activity


async def _staff(bot: Bot) -> dict[str, TeamsUser]:
    """An admin, a host and two moderators, with roles granted the way an admin would."""
    people = {
        "admin": bot.channel.new_user("Ada Admin", email=ADMIN_EMAIL),
        "host": bot.channel.new_user("Hana Host", email="hana.host@council.example"),
        "mod1": bot.channel.new_user("Mo One", email="mo.one@council.example"),
        "mod2": bot.channel.new_user("Max Two", email="max.two@council.example"),
    }
    for who, role in (("host", "host"), ("mod1", "moderator"), ("mod2", "moderator")):
        await bot.say(people["admin"], f"grant {role} {people[who].email}")
    await bot.channel.connector.wait_for(3)
    return people


def _cards_in(bot: Bot, conversation_prefix: str, kind: str = "send") -> list[Any]:
    return [
        r for r in bot.channel.connector.recorded(kind, ok=True) if r.conversation_id.startswith(conversation_prefix)
    ]


async def _moderated_question(bot: Bot, people: dict[str, TeamsUser]) -> tuple[TeamsUser, dict[str, Any], Any]:
    """A colleague's question forwarded, and its card in the moderators' channel."""
    here = await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    asker = bot.channel.new_user("Sam Staff")
    await bot.say(asker, OFF_TOPIC)

    async def card() -> Any:
        return next(iter(_cards_in(bot, MODERATORS_CHANNEL)), None)

    return asker, here, await eventually(card, what="the moderation card")


def _submit(bot: Bot, user: TeamsUser, card: Any, here: dict[str, Any], **fields: Any) -> dict[str, Any]:
    value = {"action": "moderate", "question_id": 1, **fields}
    return bot.channel.activities.card_submit(user, value, reply_to_id=card.created_id, context=here)


async def test_only_a_moderator_can_set_up_the_queue(bot: Bot) -> None:
    stranger = bot.channel.new_user("Nora Nobody")
    await _command(bot, stranger, "moderate here", MODERATORS_CHANNEL)
    [reply] = await bot.channel.connector.wait_for(1)
    assert "needs the moderator role" in reply.text and "Nothing was changed" in reply.text
    await bot.say(bot.channel.new_user("Sam Staff"), OFF_TOPIC)
    await bot.channel.connector.wait_for(2)
    await bot.drained()
    assert _cards_in(bot, MODERATORS_CHANNEL) == []


async def test_a_moderator_answers_from_the_card_and_the_asker_gets_it(bot: Bot) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    assert card.attachments[0]["content"]["body"][1]["inlines"][0]["text"] == OFF_TOPIC
    submit = _submit(bot, people["mod1"], card, here, op="answer", answer="Yes: 12 December, 6pm.")
    assert (await bot.post(submit)).status == 200

    async def delivered() -> Any:
        return next((r for r in bot.channel.connector.posts() if r.text and "12 December" in r.text), None)

    answer = await eventually(delivered, what="the answer in the asker's chat")
    assert "An answer to your question Q-1" in answer.text
    assert answer.conversation_id != card.conversation_id  # to the asker, not the channel
    updated = await eventually(lambda: resolved(_cards_in(bot, MODERATORS_CHANNEL, "update")), what="card update")
    assert updated[-1].activity_id == card.created_id
    await bot.drained()
    final = _cards_in(bot, MODERATORS_CHANNEL, "update")[-1].attachments[0]["content"]
    assert "Answered by Mo One" in str(final) and "actions" not in final
    [row] = await bot.question_rows()
    assert row["status"] == "answered"


async def test_two_moderators_answering_at_once_give_one_answer_delivered_once(bot: Bot) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    first = _submit(bot, people["mod1"], card, here, op="answer", answer="Answer from Mo.")
    second = _submit(bot, people["mod2"], card, here, op="answer", answer="Answer from Max.")
    responses = await asyncio.gather(bot.post(first), bot.post(second))
    assert [r.status for r in responses] == [200, 200]
    await bot.drained()
    answers = [r for r in bot.channel.connector.posts() if r.text and r.text.startswith("**An answer")]
    assert len(answers) == 1
    told = [r for r in bot.channel.connector.posts() if r.text and "Q-1 is already answered by" in r.text]
    assert len(told) == 1


async def test_a_card_action_from_someone_without_the_role_changes_nothing(bot: Bot) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    intruder = bot.channel.new_user("Ian Intruder")
    assert (await bot.post(_submit(bot, intruder, card, here, op="dismiss", reason="spam"))).status == 200
    await bot.drained()
    assert any("needs the moderator role" in (r.text or "") for r in bot.channel.connector.posts())
    [row] = await bot.question_rows()
    assert row["status"] == "forwarded"


async def test_marking_a_duplicate_sends_one_answer_to_both_askers(bot: Bot) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    second_asker = bot.channel.new_user("Dee Duplicate")
    await bot.say(second_asker, OFF_TOPIC + " (again)")
    second_card = await eventually(lambda: resolved(_cards_in(bot, MODERATORS_CHANNEL)[1:]), what="second card")
    merge = bot.channel.activities.card_submit(
        people["mod2"],
        {"action": "moderate", "op": "merge", "question_id": 2, "duplicate_of": "Q-1"},
        reply_to_id=second_card[0].created_id,
        context=here,
    )
    assert (await bot.post(merge)).status == 200
    await bot.drained()
    assert (await bot.post(_submit(bot, people["mod1"], card, here, op="answer", answer="One answer."))).status == 200
    await bot.drained()
    delivered = [r for r in bot.channel.connector.posts() if r.text and "One answer." in r.text]
    assert sorted("Q-1" in r.text for r in delivered) == [False, True]
    assert {row["status"] for row in await bot.question_rows()} == {"answered", "merged"}


async def test_an_anonymous_question_hides_the_asker_from_moderators(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    asker = bot.channel.new_user("Priya Private", email="priya.private@council.example")
    await bot.say(asker, "ask anonymously Is the restructure going to affect my team?")
    card = await eventually(lambda: resolved(_cards_in(bot, MODERATORS_CHANNEL)), what="the card")
    await bot.drained()
    assert "Priya" not in str(card[0].body) and "anonymously" in str(card[0].body)
    [mail] = bot.mails()
    assert b"Priya" not in mail.read_bytes() and b"priya.private" not in mail.read_bytes()


async def test_a_hosts_live_board_is_one_card_updated_in_place_and_coalesced(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["host"], "open event All-staff briefing", HOSTS_CHANNEL)
    await _command(bot, people["host"], "board here", HOSTS_CHANNEL)
    board = await eventually(lambda: resolved(_cards_in(bot, HOSTS_CHANNEL)), what="the board card")
    colleagues = [bot.channel.new_user(f"Colleague {n}") for n in range(BURST)]
    await asyncio.gather(*(bot.say(c, f"{OFF_TOPIC} #{n}") for n, c in enumerate(colleagues)))
    await bot.drained(timeout=60 + BURST / 10)
    await bot.after(INTERVAL_SECONDS)  # a refresh may be queued for the end of the current interval
    updates = _cards_in(bot, HOSTS_CHANNEL, "update")
    assert len(_cards_in(bot, HOSTS_CHANNEL)) == 1, "the board is posted once"
    assert updates and all(u.activity_id == board[0].created_id for u in updates)
    times = sorted(u.received_at for u in updates)
    # coalesced: about one update per 2-second interval while questions arrive, not one per question
    assert len(updates) <= (times[-1] - times[0]) / 2 + 2, times
    assert board_counts(updates[-1].body)["Asked"] == BURST


async def test_my_questions_lists_a_colleagues_questions_and_their_state(bot: Bot) -> None:
    asker = bot.channel.new_user("Mia Mine")
    await bot.say(asker, OFF_TOPIC)
    await bot.channel.connector.wait_for(1)
    await bot.say(asker, "my questions")
    replies = await bot.channel.connector.wait_for(2)
    assert "Q-1" in replies[1].text and "with the team" in replies[1].text


# Universal Actions: Teams cards carry Action.Execute, and a click arrives as an invoke --------


def _actions(content: dict[str, Any]) -> list[dict[str, Any]]:
    """Every action on a card: its own, its ActionSets' and those inside its ShowCard panels."""
    found = list(content.get("actions", []))
    found += [a for block in content.get("body", []) if block.get("type") == "ActionSet" for a in block["actions"]]
    return found + [inner for a in found if a["type"] == "Action.ShowCard" for inner in _actions(a["card"])]


def _button(card: Any, title: str) -> dict[str, Any]:
    """The action titled `title` on a card the bot posted (anywhere on it, panels included)."""
    return next(action for action in _actions(card.attachments[0]["content"]) if action["title"] == title)


def _click(
    bot: Bot, user: TeamsUser, card: Any, here: dict[str, Any], button: dict[str, Any], **inputs: Any
) -> dict[str, Any]:
    """What Teams sends for a click on an Action.Execute button: the inputs merged into its data."""
    return bot.channel.activities.invoke_action(
        user, button["verb"], {**button["data"], **inputs}, reply_to_id=card.created_id, context=here
    )


async def test_a_moderator_answers_with_action_execute_and_the_asker_gets_one_answer(bot: Bot) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    send = _button(card, "Send answer")
    assert (send["type"], send["verb"]) == ("Action.Execute", "moderate")
    click = _click(bot, people["mod1"], card, here, send, answer="Yes: 12 December, 6pm.", reason="", duplicate_of="")
    response = await bot.post(click)
    assert response.status == 200
    body = await response.json()
    assert (body["statusCode"], body["type"]) == (200, "application/vnd.microsoft.activity.message")
    assert body["value"] == "Your answer to Q-1 is on its way to the colleague."
    again = await bot.post(click)  # Teams sends the click again when its answer was lost
    assert again.status == 200 and (await again.json())["statusCode"] == 200
    await bot.drained()
    answers = [r for r in bot.channel.connector.posts() if r.text and "12 December" in r.text]
    assert len(answers) == 1 and "An answer to your question Q-1" in answers[0].text
    assert answers[0].conversation_id != card.conversation_id
    [row] = await bot.question_rows()
    assert row["status"] == "answered"
    in_channel = [r for r in bot.channel.connector.posts() if r.conversation_id.startswith(MODERATORS_CHANNEL)]
    assert len(in_channel) == 2, "the queue's set-up reply and the card; the click's answer is on the card"
    final = _cards_in(bot, MODERATORS_CHANNEL, "update")[-1]
    assert final.activity_id == card.created_id and "Answered by Mo One" in str(final.body)


async def test_an_action_execute_click_without_the_role_is_refused_and_changes_nothing(bot: Bot) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    await bot.drained()
    posts, updates = bot.channel.connector.posts(), _cards_in(bot, MODERATORS_CHANNEL, "update")
    intruder = bot.channel.new_user("Ian Intruder")
    response = await bot.post(_click(bot, intruder, card, here, _button(card, "Dismiss question"), reason="spam"))
    assert response.status == 200
    body = await response.json()
    assert body["statusCode"] == 200
    assert body["value"] == "This needs the moderator role. Nothing was changed."
    await bot.drained()
    assert bot.channel.connector.posts() == posts
    assert _cards_in(bot, MODERATORS_CHANNEL, "update") == updates
    [row] = await bot.question_rows()
    assert (row["status"], row["acted_by"], row["dismissed_reason"]) == ("forwarded", None, None)


async def test_a_malformed_action_execute_is_a_400_and_changes_nothing(bot: Bot) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    await bot.drained()
    posts, rows = bot.channel.connector.posts(), await bot.question_rows()
    updates = _cards_in(bot, MODERATORS_CHANNEL, "update")
    send = _button(card, "Send answer")
    good = _click(bot, people["mod1"], card, here, send, answer="An answer.", reason="", duplicate_of="")
    action = good["value"]["action"]
    malformed: dict[str, Any] = {
        "no action": {"trigger": "manual"},
        "not an object": [good["value"]],
        "Action.Submit": {**good["value"], "action": {**action, "type": "Action.Submit"}},
        "an automatic refresh": {**good["value"], "trigger": "automatic"},
        "an unknown verb": {**good["value"], "action": {**action, "verb": "delete"}},
        "data that is not an object": {**good["value"], "action": {**action, "data": "answer"}},
        "a verb its data contradicts": {**good["value"], "action": {**action, "verb": "faq_feedback"}},
        "an id as text": {**good["value"], "action": {**action, "data": {**action["data"], "question_id": "1"}}},
        "an unknown operation": {**good["value"], "action": {**action, "data": {**action["data"], "op": "delete"}}},
        "a key no card sends": {**good["value"], "action": {**action, "data": {**action["data"], "acted_by": "Boss"}}},
        "a toggle neither on nor off": {
            **good["value"], "action": {**action, "data": {**action["data"], "send_anyway": "maybe"}}},
        "an id beyond the id columns": {
            **good["value"], "action": {**action, "data": {**action["data"], "question_id": 2**31}}},
    }
    for what, value in malformed.items():
        invoke = {**good, "id": bot.channel.activities.new_activity_id(), "value": value}
        response = await bot.post(invoke)
        assert response.status == 400, what
        body = await response.json()
        assert (body["statusCode"], body["type"]) == (400, "application/vnd.microsoft.error"), what
        assert body["value"]["code"] == "BadRequest" and body["value"]["message"], what
    await bot.drained()
    assert bot.channel.connector.posts() == posts
    assert _cards_in(bot, MODERATORS_CHANNEL, "update") == updates
    assert await bot.question_rows() == rows


# Several events open: the asker says which one a question is about ---------------------------


def _event_picker(bot: Bot) -> Any:
    return next(
        (r for r in bot.channel.connector.posts() if "Which event is your question about?" in str(r.attachments)), None
    )


async def _board_update_showing(bot: Bot, text: str) -> Any:
    return next((u for u in _cards_in(bot, HOSTS_CHANNEL, "update") if text in str(u.body)), None)


async def test_with_two_events_open_the_asker_picks_the_event_once(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["host"], "open event Morning briefing", HOSTS_CHANNEL)
    await _command(bot, people["host"], "open event Afternoon briefing", HOSTS_CHANNEL)
    await _command(bot, people["host"], "board here E-2", HOSTS_CHANNEL)
    await eventually(lambda: resolved(_cards_in(bot, HOSTS_CHANNEL)), what="the board card")
    asker = bot.channel.new_user("Pia Picker")
    asked = await bot.say(asker, OFF_TOPIC)
    [row] = await bot.question_rows()
    assert row["event_id"] is None  # recorded at once, before anyone chose
    picker = await eventually(lambda: resolved(_event_picker(bot)), what="the event picker")
    assert picker.conversation_id == asked["conversation"]["id"]
    content = picker.attachments[0]["content"]
    [choices] = [block for block in content["body"] if block["type"] == "Input.ChoiceSet"]
    assert (choices["style"], choices["isRequired"]) == ("expanded", True)
    assert [c["title"] for c in choices["choices"]] == [
        "E-1: Morning briefing",
        "E-2: Afternoon briefing",
        "None of these",
    ]
    assert [a["title"] for a in content["actions"]] == ["Send"]
    forwarded = await eventually(  # the question is not held back waiting for the choice
        lambda: resolved(
            [r for r in bot.channel.connector.posts() if r.text and "sent your question to the team" in r.text]
        ),
        what="the forwarded reply",
    )
    assert "Q-1" in forwarded[0].text
    send = _button(picker, "Send")
    assert send["fallback"]["type"] == "Action.Submit"  # for clients without Universal Actions

    other = bot.channel.new_user("Olly Other")
    refused = await bot.post(
        bot.channel.activities.invoke_action(
            other, send["verb"], {**send["data"], "event_id": "2"}, reply_to_id=picker.created_id
        )
    )
    assert (await refused.json())["value"] == "Only the colleague who asked that question can answer this card."
    [row] = await bot.question_rows()
    assert row["event_id"] is None

    chosen = await bot.post(
        bot.channel.activities.invoke_action(
            asker, send["verb"], {**send["data"], "event_id": "2"}, reply_to_id=picker.created_id, context=asked
        )
    )
    assert chosen.status == 200
    body = await chosen.json()
    assert body["type"] == "application/vnd.microsoft.card.adaptive"  # the picker, used: no choices left
    assert "✓ Thanks: Q-1 is now a question for E-2." in str(body["value"])
    assert "Input.ChoiceSet" not in str(body["value"]) and "actions" not in body["value"]
    [row] = await bot.question_rows()
    assert row["event_id"] == 2
    board = await eventually(lambda: _board_update_showing(bot, "Q-1"), what="the board counting Q-1")
    assert board_counts(board.body)["Asked"] == 1

    # A second choice, here from the card as it was first posted (Action.Submit), changes nothing.
    again = bot.channel.activities.card_submit(
        asker, {**send["data"], "event_id": "1"}, reply_to_id=picker.created_id, context=asked
    )
    assert (await bot.post(again)).status == 200
    await bot.drained()
    told = [r for r in bot.channel.connector.posts() if r.text and "already said which event Q-1" in r.text]
    assert len(told) == 1
    [row] = await bot.question_rows()
    assert row["event_id"] == 2


async def test_none_of_these_leaves_the_question_out_of_every_event(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["host"], "open event Morning briefing", HOSTS_CHANNEL)
    await _command(bot, people["host"], "open event Afternoon briefing", HOSTS_CHANNEL)
    asker = bot.channel.new_user("Nell None")
    asked = await bot.say(asker, OFF_TOPIC)
    picker = await eventually(lambda: resolved(_event_picker(bot)), what="the event picker")
    told = []
    send = _button(picker, "Send")
    for choice in ("0", "1"):  # "None of these", then E-1
        response = await bot.post(
            bot.channel.activities.invoke_action(
                asker, send["verb"], {**send["data"], "event_id": choice}, reply_to_id=picker.created_id, context=asked
            )
        )
        assert response.status == 200
        told.append(str((await response.json())["value"]))
    assert "✓ Noted: Q-1 is not about any of those events." in told[0]
    assert "✓ You already said which event Q-1 is about; nothing was changed." in told[1]
    [row] = await bot.question_rows()
    assert row["event_id"] is None


async def test_a_redelivered_open_event_command_opens_one_event(bot: Bot) -> None:
    """Teams redelivers a slow command with the same id: the host must not get two events."""
    people = await _staff(bot)
    activity = await _command(bot, people["host"], "open event All-staff briefing", HOSTS_CHANNEL)
    assert (await bot.post(activity)).status == 200
    await bot.drained()
    await bot.say(people["host"], "events")
    await bot.drained()
    [listing] = [
        p
        for p in bot.channel.connector.posts()
        if p.text and "All-staff briefing" in p.text and "E-1" in p.text and "is open" not in p.text
    ]
    assert "E-2" not in listing.text
    assert len([p for p in bot.channel.connector.posts() if p.text and "is open" in p.text]) == 1
