"""A colleague asks in Teams: recorded once, answered from the FAQ or forwarded, told which."""

from __future__ import annotations

import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from config.settings import Settings
from tests.e2e.conftest import APP_ID, APP_PASSWORD, OFF_TOPIC, Bot, an_faq_entry, serving
from tests.support.channel import FakeChannel


def _card(reply: object) -> dict:
    [attachment] = reply.attachments  # type: ignore[attr-defined]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


async def test_a_question_the_faq_knows_is_answered_at_once_with_a_card(bot: Bot) -> None:
    entry_id, question, answer = an_faq_entry()
    user = bot.channel.new_user("Asha Patel")
    activity = await bot.say(user, question)
    [reply] = await bot.channel.connector.wait_for(1)
    assert reply.kind == "reply" and reply.activity_id == activity["id"]
    assert reply.auth.valid
    card = _card(reply)
    assert answer in [block.get("text") for block in card["body"]]
    assert [action["title"] for action in card["actions"]] == ["Yes", "No, send it to the team"]
    [row] = await bot.question_rows()
    assert (row["status"], row["faq_entry_id"], row["text"]) == ("answered_faq", entry_id, question)
    await bot.drained()
    assert bot.mails() == []


async def test_a_question_the_faq_cannot_answer_goes_to_the_moderators(bot: Bot) -> None:
    user = bot.channel.new_user("Tom Reed", email="tom.reed@council.example")
    await bot.say(user, OFF_TOPIC)
    [reply] = await bot.channel.connector.wait_for(1)
    assert "sent your question to the team" in reply.text and "Q-1" in reply.text
    await bot.drained()
    [path] = bot.mails()
    mail = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert mail["Subject"].startswith("[Q-1] Will the staff choir")
    assert mail["To"] == "staff-questions@council.example"
    body = mail.get_body(("plain",)).get_content()
    assert OFF_TOPIC in body and "Tom Reed" in body and "tom.reed@council.example" in body
    [row] = await bot.question_rows()
    assert row["status"] == "forwarded"
    assert row["forward_message_id"] == mail["Message-ID"]


async def test_a_redelivered_activity_records_nothing_new_and_sends_no_second_reply(bot: Bot) -> None:
    user = bot.channel.new_user("Ren Ito")
    activity = bot.channel.activities.personal_message(user, OFF_TOPIC)
    for _ in range(3):
        assert (await bot.post(activity)).status == 200
    await bot.channel.connector.wait_for(1)
    await bot.drained()
    assert len(await bot.question_rows()) == 1
    assert len(bot.channel.connector.posts()) == 1
    assert len(bot.mails()) == 1


async def test_an_at_mention_in_a_channel_is_a_question_without_the_mention(bot: Bot) -> None:
    user = bot.channel.new_user("Gwen Price")
    activity = bot.channel.activities.channel_mention(user, OFF_TOPIC)
    assert (await bot.post(activity)).status == 200
    [reply] = await bot.channel.connector.wait_for(1)
    assert reply.conversation_id == activity["conversation"]["id"]
    [row] = await bot.question_rows()
    assert row["text"] == OFF_TOPIC
    assert row["conversation_type"] == "channel"


async def test_installing_the_bot_sends_one_welcome(bot: Bot) -> None:
    user = bot.channel.new_user("Ines Ortega")
    assert (await bot.post(bot.channel.activities.bot_added(user))).status == 200
    assert (await bot.post(bot.channel.activities.installation_update(user))).status == 200
    [welcome] = await bot.channel.connector.wait_for(1)
    await bot.drained()
    assert "colleague questions bot" in welcome.text
    assert len(bot.channel.connector.posts()) == 1
    assert await bot.question_rows() == []


async def test_help_explains_what_the_bot_does_and_records_nothing(bot: Bot) -> None:
    user = bot.channel.new_user("Hal Jones")
    await bot.say(user, "help")
    [reply] = await bot.channel.connector.wait_for(1)
    assert "FAQ" in reply.text and "Q-42" in reply.text
    assert await bot.question_rows() == []


async def test_no_on_the_answer_card_sends_the_question_to_the_team(bot: Bot) -> None:
    _, question, _ = an_faq_entry()
    user = bot.channel.new_user("Nia Clarke")
    asked = await bot.say(user, question)
    [answer] = await bot.channel.connector.wait_for(1)
    no = _card(answer)["actions"][1]["data"]
    submit = bot.channel.activities.card_submit(user, no, reply_to_id=answer.created_id, context=asked)
    assert (await bot.post(submit)).status == 200
    replies = await bot.channel.connector.wait_for(2)
    assert "Q-1" in replies[1].text
    await bot.drained()
    [row] = await bot.question_rows()
    assert row["status"] == "forwarded"
    assert len(bot.mails()) == 1
    assert (await bot.post(submit)).status == 200  # clicking again changes nothing more
    await bot.drained()
    assert len(bot.mails()) == 1


async def test_no_clicked_in_teams_is_answered_on_the_card_and_forwards_once(bot: Bot) -> None:
    """Teams cards use Action.Execute: the click is an invoke, answered in its HTTP response."""
    _, question, _ = an_faq_entry()
    user = bot.channel.new_user("Ned Execute")
    asked = await bot.say(user, question)
    [answer] = await bot.channel.connector.wait_for(1)
    no = _card(answer)["actions"][1]
    assert (no["type"], no["verb"]) == ("Action.Execute", "faq_feedback")
    click = bot.channel.activities.invoke_action(
        user, no["verb"], no["data"], reply_to_id=answer.created_id, context=asked
    )
    response = await bot.post(click)
    assert response.status == 200
    body = await response.json()
    assert (body["statusCode"], body["type"]) == (200, "application/vnd.microsoft.card.adaptive")
    used = body["value"]  # the card as it is now: the answer stays, the buttons are gone
    assert "actions" not in used and "Action." not in str(used)
    assert "✓ You asked the team to answer it (Q-1)." in str(used)
    assert _card(answer)["body"][2] in used["body"]
    again = await bot.post(bot.channel.activities.invoke_action(
        user, no["verb"], no["data"], reply_to_id=answer.created_id, context=asked))
    assert "already with the team" in (await again.json())["value"]
    await bot.drained()
    assert len(bot.channel.connector.posts()) == 1  # the answers were on the card, not new messages
    [row] = await bot.question_rows()
    assert row["status"] == "forwarded"
    assert len(bot.mails()) == 1


async def test_yes_on_the_answer_card_is_thanked_and_nothing_is_forwarded(bot: Bot) -> None:
    _, question, _ = an_faq_entry()
    user = bot.channel.new_user("Yusuf Ali")
    asked = await bot.say(user, question)
    [answer] = await bot.channel.connector.wait_for(1)
    yes = _card(answer)["actions"][0]["data"]
    submit = bot.channel.activities.card_submit(user, yes, reply_to_id=answer.created_id, context=asked)
    assert (await bot.post(submit)).status == 200
    replies = await bot.channel.connector.wait_for(2)
    assert "glad that helped" in replies[1].text
    await bot.drained()
    assert bot.mails() == []
    # The card clicked (Action.Submit, an older client) is updated in place: no buttons left.
    [update] = bot.channel.connector.recorded("update", ok=True)
    assert update.activity_id == answer.created_id
    used = _card(update)
    assert "actions" not in used and "✓ You said this answered your question." in str(used)


async def test_only_the_asker_can_answer_the_card(bot: Bot) -> None:
    _, question, _ = an_faq_entry()
    asker, other = bot.channel.new_user("Ann Asker"), bot.channel.new_user("Olly Other")
    await bot.say(asker, question)
    [answer] = await bot.channel.connector.wait_for(1)
    no = _card(answer)["actions"][1]["data"]
    submit = bot.channel.activities.card_submit(other, no, reply_to_id=answer.created_id)
    assert (await bot.post(submit)).status == 200
    replies = await bot.channel.connector.wait_for(2)
    assert "Only the colleague who asked" in replies[1].text
    await bot.drained()
    [row] = await bot.question_rows()
    assert row["status"] == "answered_faq"
    assert bot.mails() == []


async def test_a_throttled_connector_gets_the_reply_once_after_retry_after(bot: Bot) -> None:
    bot.channel.connector.fail_next(2, status=429, retry_after=1)
    user = bot.channel.new_user("Theo Throttle")
    started = time.monotonic()
    await bot.say(user, OFF_TOPIC)
    [reply] = await bot.channel.connector.wait_for(1, timeout=20)
    assert time.monotonic() - started >= 2.0
    await bot.drained()
    assert [r.status for r in bot.channel.connector.recorded("reply")] == [429, 429, 201]
    assert len(bot.channel.connector.posts()) == 1
    assert "Q-1" in reply.text


async def test_a_throttled_conversation_is_left_alone_until_its_retry_after(bot: Bot) -> None:
    """One 429 holds back every reply to that conversation, not only the refused one."""
    user = bot.channel.new_user("Tess Throttle")
    bot.channel.connector.fail_next(1, status=429, retry_after=2)
    for n in range(3):
        await bot.say(user, f"{OFF_TOPIC} ({n})")
    replies = await bot.channel.connector.wait_for(3, timeout=30)
    await bot.drained()
    requests = bot.channel.connector.recorded("reply")
    [refused] = [r for r in requests if r.status == 429]
    after = [r.received_at - refused.received_at for r in requests if r.received_at > refused.received_at]
    assert after and min(after) >= 2.0, after
    assert sorted(r.activity_id for r in replies) == sorted({r.activity_id for r in replies})


async def test_a_503_from_the_connector_is_retried(bot: Bot) -> None:
    bot.channel.connector.fail_next(1, status=503)
    user = bot.channel.new_user("Una Available")
    await bot.say(user, OFF_TOPIC)
    [reply] = await bot.channel.connector.wait_for(1, timeout=20)
    assert "Q-1" in reply.text


async def test_the_outgoing_token_is_fetched_once_for_many_replies(bot: Bot) -> None:
    for n in range(5):
        await bot.say(bot.channel.new_user(f"Colleague {n}"), f"{OFF_TOPIC} ({n})")
    await bot.channel.connector.wait_for(5)
    await bot.drained()
    assert bot.channel.aad.token_request_count == 1


async def test_a_single_tenant_bot_answers_with_a_token_from_its_own_tenant(
    channel: FakeChannel, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New Azure bots are single-tenant: the reply token must come from the bot's tenant."""
    tenant = "3c7d1e55-6f2a-4b8e-9d10-2a4b6c8e0f12"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(channel.ca_bundle))
    env = channel.bot_env(APP_ID, APP_PASSWORD, single_tenant_id=tenant)
    env.update(DATABASE_URL=database_url, MAIL_OUTBOX_DIR=str(tmp_path / "outbox"))
    settings = Settings(**env)
    async with serving(channel, settings) as bot:
        await bot.say(channel.new_user("Sian Single"), OFF_TOPIC)
        [reply] = await channel.connector.wait_for(1)
        assert reply.auth.valid and "Q-1" in reply.text
        assert {request.tenant for request in channel.aad.token_requests()} == {tenant}


async def test_without_an_app_id_the_emulator_can_talk_to_the_bot(
    channel: FakeChannel, database_url: str, tmp_path: Path
) -> None:
    """Local trials with the Bot Framework Emulator: no token in, none out, same answers."""
    channel.register_app(APP_ID, APP_PASSWORD)  # the channel's side; the bot has no app id
    channel.connector.enforce_auth = False
    settings = Settings(DATABASE_URL=database_url, MAIL_OUTBOX_DIR=str(tmp_path / "outbox"))
    async with serving(channel, settings) as bot:
        asked = channel.activities.personal_message(channel.new_user("Emma Emulator"), OFF_TOPIC)
        response = await bot.post(asked, authorization=None)
        assert response.status == 200
        [reply] = await channel.connector.wait_for(1)
        assert reply.activity_id == asked["id"] and "Q-1" in reply.text
        assert reply.authorization is None
        await bot.drained()
        assert len(bot.mails()) == 1


async def test_a_private_question_in_a_channel_is_taken_to_a_personal_chat_once(bot: Bot) -> None:
    user = bot.channel.new_user("Rae Quiet")
    secret = "Can I get an advance on my salary, I am in debt?"
    activity = bot.channel.activities.channel_mention(user, f"ask privately {secret}")
    for _ in range(2):  # Teams redelivers: the 1:1 chat is opened again, nothing more is recorded
        assert (await bot.post(activity)).status == 200
    await bot.channel.connector.wait_for(3)
    await bot.drained()
    opened = bot.channel.connector.recorded("create_conversation", ok=True)
    assert opened and {(r.body["isGroup"], r.body["members"][0]["id"], r.body["tenantId"]) for r in opened} == {
        (False, user.id, bot.channel.tenant_id)}
    personal_chat = bot.channel.activities.personal_conversation(user)["id"]
    in_channel = [r for r in bot.channel.connector.posts() if r.conversation_id == activity["conversation"]["id"]]
    assert [r.text for r in in_channel] == ["I've replied to you in a personal chat."]
    in_private = [r for r in bot.channel.connector.posts() if r.conversation_id == personal_chat]
    assert len(in_private) == 2  # the acknowledgement, then "sent to the team, Q-1"
    assert secret in in_private[0].text and "marked **private**" in in_private[0].text
    assert "Your data:" in in_private[0].text  # the first reply to a new asker says what is kept
    assert "Q-1" in in_private[1].text and "Your data:" not in in_private[1].text
    [row] = await bot.question_rows()
    assert row["private"] and row["conversation_type"] == "channel"


async def test_when_the_app_is_not_installed_for_the_asker_nothing_is_recorded_and_they_are_told_how(bot: Bot) -> None:
    user = bot.channel.new_user("Uma Uninstalled")
    bot.channel.connector.not_installed_for.add(user.id)
    secret = "Is my team being restructured while I am on sick leave?"
    for ask in (f"ask privately {secret}", f"ask anonymously {secret}"):
        assert (await bot.post(bot.channel.activities.channel_mention(user, ask))).status == 200
    told = await bot.channel.connector.wait_for(2)
    await bot.drained()
    assert [r.kind for r in bot.channel.connector.recorded("create_conversation")] == ["create_conversation"] * 2
    assert all(r.status == 403 for r in bot.channel.connector.recorded("create_conversation"))
    for reply in told:
        assert "nothing was recorded" in reply.text and "**ask privately**" in reply.text
        assert secret not in reply.text
    assert await bot.question_rows() == []
    assert bot.mails() == []

    other = bot.channel.new_user("Tia Tried")  # installed, but Teams is unavailable for a moment
    bot.channel.connector.fail_next(status=503, kinds={"create_conversation"})
    assert (await bot.post(bot.channel.activities.channel_mention(other, f"ask privately {secret}"))).status == 200
    [*_, later] = await bot.channel.connector.wait_for(3)
    await bot.drained()
    assert "nothing was recorded" in later.text and "try again" in later.text and secret not in later.text
    assert await bot.question_rows() == []


async def test_help_and_the_welcome_say_what_is_kept_for_how_long_and_how_to_ask_privately(bot: Bot) -> None:
    user = bot.channel.new_user("Hal Jones")
    assert (await bot.post(bot.channel.activities.installation_update(user))).status == 200
    await bot.say(user, "help")
    welcome, help_reply = await bot.channel.connector.wait_for(2)
    for reply in (welcome, help_reply):
        assert "365 days" in reply.text and "published digests name nobody" in reply.text
        assert "**ask privately**" in reply.text and "**ask anonymously**" in reply.text
