"""Requests that are not authenticated activities are refused, and change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import APP_ID, Bot

FORGED = {
    "signed with another key": {"sign_with": "rogue"},
    "signed with the login authority's key": {"sign_with": "aad"},
    "expired": {"expired": True},
    "wrong audience": {"aud": "some-other-bot"},
    "wrong issuer": {"iss": "https://attacker.example"},
    "no issuer": {"iss": None},
    "service url differs": {"serviceurl": "https://attacker.example/"},
    "unknown key id": {"kid": "not-a-published-key"},
    "no key id": {"kid": None},
    "unsigned (alg none)": {"alg": "none"},
    "HMAC with the public key": {"alg": "HS256"},
}


async def _nothing_happened(bot: Bot) -> None:
    assert await bot.question_rows() == []
    assert await bot.outbox_count() == 0
    assert bot.channel.connector.recorded() == []


@pytest.mark.parametrize("forgery", FORGED.values(), ids=FORGED.keys())
async def test_a_forged_token_gets_401_and_records_nothing(bot: Bot, forgery: dict[str, Any]) -> None:
    user = bot.channel.new_user("Mallory Example")
    activity = bot.channel.activities.personal_message(user, "What is the pay award this year?")
    response = await bot.post(activity, authorization=bot.channel.bearer(APP_ID, **forgery))
    assert response.status == 401
    assert (await response.json())["error"] == "unauthorized"
    await _nothing_happened(bot)


async def test_a_token_accepted_once_is_still_refused_for_another_service_url(bot: Bot) -> None:
    """Validated tokens are remembered (bot.connectors): only for the service URL they were
    checked with, so a captured token cannot redirect the bot's replies elsewhere."""
    token = bot.channel.bearer(APP_ID)
    user = bot.channel.new_user("Mallory Example")
    first = bot.channel.activities.personal_message(user, "What is the pay award this year?")
    assert (await bot.post(first, authorization=token)).status == 200
    elsewhere = bot.channel.activities.personal_message(user, "Send my answer somewhere else")
    elsewhere["serviceUrl"] = "https://attacker.example/"
    response = await bot.post(elsewhere, authorization=token)
    assert response.status == 401
    assert [row["text"] for row in await bot.question_rows()] == ["What is the pay award this year?"]


async def test_a_missing_token_gets_401(bot: Bot) -> None:
    user = bot.channel.new_user("Mallory Example")
    response = await bot.post(bot.channel.activities.personal_message(user, "hello?"), authorization=None)
    assert response.status == 401
    await _nothing_happened(bot)


async def test_a_body_over_256_kib_gets_413(bot: Bot) -> None:
    user = bot.channel.new_user("Oliver Large")
    activity = bot.channel.activities.personal_message(user, "x" * (256 * 1024))
    response = await bot.post(activity)
    assert response.status == 413
    await _nothing_happened(bot)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2, 3]", b'{"text": "no type"}', b'{"type": "message", "text": "no ids"}', b"\xff\xfe"],
    ids=["broken JSON", "a list", "no type", "a message without ids", "not UTF-8"],
)
async def test_a_body_that_is_not_an_activity_gets_400(bot: Bot, body: bytes) -> None:
    response = await bot.client.post(
        "/api/messages",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": bot.channel.bearer(APP_ID)},
    )
    assert response.status == 400
    assert (await response.json())["error"] in {"not_json", "not_an_activity"}
    await _nothing_happened(bot)


async def test_a_question_over_the_limit_gets_a_clear_reply_and_is_not_recorded(bot: Bot) -> None:
    user = bot.channel.new_user("Verity Long")
    activity = await bot.say(user, "Why " + "really " * 400 + "?")
    [reply] = await bot.channel.connector.wait_for(1)
    assert "at most 2,000" in reply.text
    assert reply.activity_id == activity["id"]
    await bot.drained()
    assert await bot.question_rows() == []
