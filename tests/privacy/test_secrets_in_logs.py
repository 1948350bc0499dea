"""A whole flow at DEBUG: no password, client secret or bearer token ever reaches the logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import APP_ID, APP_PASSWORD, OFF_TOPIC, Bot, eventually
from tests.support.graph import GraphWorld


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """DEBUG for every logger, from before the bot starts (requested ahead of `mail_bot`)."""
    caplog.set_level(logging.DEBUG)
    yield caplog


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Formatted messages, and the raw arguments too (a handler with another format would show them)."""
    return caplog.text + "\n".join(repr(record.args) + repr(record.__dict__) for record in caplog.records)


def _token(authorization: str | None) -> str:
    assert authorization and authorization.startswith("Bearer "), authorization
    return authorization.removeprefix("Bearer ")


async def test_no_secret_or_token_is_logged_during_a_whole_question_and_answer(
    debug_logs: pytest.LogCaptureFixture, mail_bot: Bot, graph_world: GraphWorld
) -> None:
    bot, channel = mail_bot, mail_bot.channel
    user = channel.new_user("Sid Secret", email="sid.secret@council.example")
    inbound: list[str] = []

    asked = channel.activities.personal_message(user, OFF_TOPIC)
    inbound.append(channel.bearer(APP_ID))
    assert (await bot.post(asked, authorization=inbound[-1])).status == 200

    forged = channel.activities.personal_message(user, "let me in")
    inbound.append(channel.bearer(APP_ID, sign_with="rogue"))
    assert (await bot.post(forged, authorization=inbound[-1])).status == 401

    async def forwarded() -> dict[str, Any] | None:
        return next((m for m in graph_world.graph.sent_items() if m["subject"].startswith("[Q-")), None)

    forward = await eventually(forwarded, what="the question forwarded through Graph")
    graph_world.graph.deliver_to_inbox(
        "moderator.one@council.example", f"RE: {forward['subject']}", text="Yes, on 12 December.",
        in_reply_to=forward["internetMessageId"],
    )
    replies = await channel.connector.wait_for(2, timeout=20)
    assert "Yes, on 12 December." in (replies[1].text or "")
    await bot.drained()

    logged = _logged(debug_logs)
    assert len(debug_logs.records) > 20  # DEBUG really was on
    outbound = {_token(request.authorization) for request in channel.connector.recorded()}
    graph_tokens = set(graph_world.identity.issued_tokens)
    assert outbound and graph_tokens  # both services really issued tokens to the bot
    assert APP_PASSWORD not in logged
    assert graph_world.client_secret not in logged
    for token in [*inbound, *outbound, *graph_tokens]:
        assert token not in logged
        assert token.split(".")[2] not in logged  # not even the signature
