"""Hostile requests to POST /api/messages: a clear answer to each, no 500, the bot stays up.

A rejected request (4xx) leaves every table as it was. An accepted message always leads to an
answer for the sender: a reply queued, or a question recorded with its triage job queued.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from store.db import create_engine
from store.store import Store
from tests.e2e.conftest import APP_ID, Bot
from tests.hostile.support import EDGE_INTS, JSON, question_states, row_counts

ANSWERED = {200, 400, 401, 413, 415}

COMMANDS = st.sampled_from(
    [
        "help", "?", "my questions", "events", "me too Q-1", "me too Q-999999999", "me too Q-",
        "open event: Town hall | all staff", "close event E-99999999999999999999", "board here E-0",
        "grant moderator someone@x.example", "revoke host %", "moderate here", "anonymously: why?",
        "ask anonymously:", "<at>Questions Bot</at>", "<at>Questions Bot</at> what is the pay award?",
    ]
)
TEXTS = COMMANDS | st.text(max_size=200) | st.text(min_size=1990, max_size=2100)


@pytest.fixture
async def db(bot: Bot) -> AsyncIterator[Store]:
    """The bot's own database, read from beside it."""
    store = Store(create_engine(bot.settings.database_url))
    yield store
    await store.engine.dispose()


async def _post_raw(bot: Bot, body: bytes, content_type: str = "application/json") -> Any:
    return await bot.client.post(
        "/api/messages", data=body,
        headers={"Content-Type": content_type, "Authorization": bot.channel.bearer(APP_ID)},
    )


async def _still_up(bot: Bot) -> None:
    response = await bot.client.get("/healthz")
    assert response.status == 200


async def _check_rejected_changed_nothing(bot: Bot, db: Store, response: Any, before: dict[str, int]) -> None:
    assert response.status in ANSWERED, (response.status, await response.text())
    if response.status >= 400:
        problem = await response.json()
        assert problem["error"] and problem["detail"]  # says what was wrong
        assert await row_counts(db) == before


@given(body=st.binary(max_size=600) | JSON.map(lambda value: json.dumps(value).encode()))
async def test_any_body_gets_a_clear_status_and_a_rejected_one_changes_nothing(
    bot: Bot, db: Store, body: bytes
) -> None:
    before = await row_counts(db)
    response = await _post_raw(bot, body)
    await _check_rejected_changed_nothing(bot, db, response, before)
    await bot.drained()
    await _still_up(bot)


BOT_ID = f"28:{APP_ID}"
MENTIONS = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["mention", "MENTION", "clientInfo"]) | JSON},
        optional={
            "mentioned": JSON | st.fixed_dictionaries({"id": st.just(BOT_ID)}, optional={"name": JSON}),
            "text": st.sampled_from(["<at>Questions Bot</at>", "<at>(</at>", "<at>.*</at>", ""]) | JSON,
        },
    )
    | JSON,
    max_size=3,
)

MUTATIONS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "conversationUpdate", "installationUpdate", "messageReaction",
                                 "invoke", "event", "typing", "", "x" * 300]),
        "action": st.sampled_from(["add", "remove", "add-upgrade"]) | JSON,
        "name": st.sampled_from(["adaptiveCard/action", "task/fetch", "composeExtension/query"]) | JSON,
        "reactionsAdded": JSON,
        "text": TEXTS | JSON,
        "value": JSON,
        "entities": MENTIONS | JSON,
        "channelData": JSON,
        "attachments": JSON,
        "replyToId": st.text(max_size=40) | JSON,
        "locale": st.text(max_size=20),
        "from.name": st.text(max_size=300) | JSON,
        "from.aadObjectId": st.text(max_size=80) | JSON,
        "conversation.conversationType": st.text(max_size=20) | JSON,
        "conversation.id": st.text(min_size=1, max_size=600),
        "recipient.id": st.text(max_size=40),
        "membersAdded": JSON,
    },
)


def _mutate(activity: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for path, value in changes.items():
        target = activity
        *parents, field = path.split(".")
        for parent in parents:
            target = target[parent]
        target[field] = value
    return activity


@given(changes=MUTATIONS)
@example(changes={"text": "\x00"})  # found by the mail test: PostgreSQL cannot store NUL
@example(changes={"text": "Is the car park\x00 open?", "from.name": "Nul\x00 Name"})
@example(changes={"entities": [None]})  # found by this test: botbuilder's mention removal raised
@example(changes={"type": "conversationUpdate", "membersAdded": [None]})
async def test_a_tampered_teams_activity_is_answered_or_refused(
    bot: Bot, db: Store, changes: dict[str, Any]
) -> None:
    user = bot.channel.new_user("Hilda Hostile")
    activity = _mutate(bot.channel.activities.personal_message(user, "What is the pay award?"), changes)
    before = await row_counts(db)
    response = await bot.post(activity)
    if activity["type"] == "invoke" and response.status == 501:
        # The Bot Framework's own answer to an invoke the bot does not handle.
        assert await row_counts(db) == before
    else:
        await _check_rejected_changed_nothing(bot, db, response, before)
    if response.status == 200 and activity["type"] == "message":
        after = await row_counts(db)
        assert after["outbox"] > before["outbox"], "a message got neither a reply nor a recorded question"
    await bot.drained()
    await _still_up(bot)


SUBMISSIONS = (
    JSON
    | st.fixed_dictionaries(
        {"action": st.just("faq_feedback"), "question_id": EDGE_INTS | JSON, "helpful": st.booleans() | JSON}
    )
    | st.fixed_dictionaries(
        {
            "action": st.just("moderate"),
            "op": st.sampled_from(["claim", "answer", "dismiss", "merge", "delete", ""]) | JSON,
            "question_id": EDGE_INTS | JSON,
        },
        optional={"answer": st.text(max_size=50) | JSON, "reason": JSON, "duplicate_of": st.text(max_size=20) | JSON},
    )
)


@given(value=SUBMISSIONS)
async def test_a_forged_card_submission_gets_a_reply_and_changes_no_question(
    bot: Bot, db: Store, value: Any
) -> None:
    """Cards can be replayed with any data; only the asker or a moderator may change anything,
    and this sender is neither."""
    if not await question_states(db):
        await bot.say(bot.channel.new_user("Alice Asker"), "Will the Shire Hall car park reopen after the works?")
        await bot.drained()
    stranger = bot.channel.new_user("Carl Cardforger")
    activity = bot.channel.activities.card_submit(stranger, {}, reply_to_id="1700000000000")
    activity["value"] = value
    before, states = await row_counts(db), await question_states(db)
    response = await bot.post(activity)
    assert response.status == 200, await response.text()
    after = await row_counts(db)
    assert after["outbox"] == before["outbox"] + 1  # exactly one reply to the sender
    # Checking the moderator role looks the sender up in the roster and remembers them
    # (people is that cache); nothing else may change.
    assert {table: count for table, count in after.items() if table not in ("outbox", "people")} == {
        table: count for table, count in before.items() if table not in ("outbox", "people")
    }
    assert await question_states(db) == states
    await bot.drained()
    await _still_up(bot)


async def test_a_channel_mention_is_taken_out_of_the_question(bot: Bot) -> None:
    """The @mention (even one whose name looks like a regular expression) is not part of the question."""
    user = bot.channel.new_user("Chan Nell")
    activity = bot.channel.activities.channel_mention(user, "Is (the) car park [really] closed?")
    activity["entities"].insert(0, None)  # an entity Teams never sends, skipped
    response = await bot.post(activity)
    assert response.status == 200
    await bot.channel.connector.wait_for(1)
    [row] = await bot.question_rows()
    assert row["text"] == "Is (the) car park [really] closed?"
