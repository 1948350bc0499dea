"""The whole loop through Microsoft Graph: forward, moderator reply, answer in Teams; mail questions."""

from __future__ import annotations

from typing import Any

from store.db import create_engine
from store.store import Store
from tests.e2e.conftest import OFF_TOPIC, Bot, an_faq_entry, eventually
from tests.support.graph import GraphWorld


async def _forwarded(world: GraphWorld, count: int = 1) -> list[dict[str, Any]]:
    async def sent() -> list[dict[str, Any]] | None:
        items = [m for m in world.graph.sent_items() if m["subject"].startswith("[Q-")]
        return items if len(items) >= count else None

    return await eventually(sent, what=f"{count} forwarded mail(s) in Sent Items")


async def test_a_moderators_mail_reply_reaches_the_asker_in_teams(mail_bot: Bot, graph_world: GraphWorld) -> None:
    user = mail_bot.channel.new_user("Tom Reed", email="tom.reed@council.example")
    asked = await mail_bot.say(user, OFF_TOPIC)
    [forward] = await _forwarded(graph_world)
    assert forward["subject"].startswith("[Q-1] ")
    assert "tom.reed@council.example" in forward["body"]["content"]
    graph_world.graph.deliver_to_inbox(
        "moderator.one@council.example",
        f"RE: {forward['subject']}",
        sender_name="Moderator One",
        text="Yes, the choir sings on 12 December.\n\nKind regards,\nModerator One\n\n"
        f"From: Staff questions\nSent: today\n{OFF_TOPIC}",
        in_reply_to=forward["internetMessageId"],
    )
    replies = await mail_bot.channel.connector.wait_for(2, timeout=20)
    answer = replies[1]
    assert "Yes, the choir sings on 12 December." in answer.text
    assert "Kind regards" not in answer.text and "From: Staff questions" not in answer.text
    assert answer.conversation_id == asked["conversation"]["id"]
    [row] = await mail_bot.question_rows()
    assert row["status"] == "answered"
    await mail_bot.drained()
    assert len(graph_world.graph.sent_items()) == 1


async def test_a_second_reply_is_delivered_as_a_follow_up(mail_bot: Bot, graph_world: GraphWorld) -> None:
    user = mail_bot.channel.new_user("Fay Follow")
    await mail_bot.say(user, OFF_TOPIC)
    [forward] = await _forwarded(graph_world)
    for text in ("First answer.", "A correction: it is the 13th."):
        graph_world.graph.deliver_to_inbox(
            "moderator.one@council.example", f"RE: {forward['subject']}", text=text,
            in_reply_to=forward["internetMessageId"],
        )
    replies = await mail_bot.channel.connector.wait_for(3, timeout=20)
    assert "First answer." in replies[1].text
    assert "More on your question Q-1" in replies[2].text and "the 13th" in replies[2].text


async def test_a_reply_from_outside_the_moderators_is_not_an_answer(mail_bot: Bot, graph_world: GraphWorld) -> None:
    user = mail_bot.channel.new_user("Pat Private")
    await mail_bot.say(user, OFF_TOPIC)
    [forward] = await _forwarded(graph_world)
    graph_world.graph.deliver_to_inbox(
        "someone@elsewhere.example", f"RE: {forward['subject']}", text="I can answer that!",
        in_reply_to=forward["internetMessageId"],
    )
    await eventually(lambda: _processed(graph_world, 1), what="the mail handled")
    await mail_bot.drained()
    assert len(mail_bot.channel.connector.posts()) == 1  # only "sent to the team"
    [row] = await mail_bot.question_rows()
    assert row["status"] == "forwarded"


async def test_a_colleague_can_ask_by_mail_and_gets_the_faq_answer_by_mail(mail_bot: Bot, graph_world: GraphWorld) -> None:
    _, question, answer = an_faq_entry()
    message_id = "<ask-1@council.example>"
    graph_world.graph.deliver_to_inbox(
        "jo.bloggs@council.example", "A question", text=question, sender_name="Jo Bloggs", message_id=message_id
    )

    async def reply() -> dict[str, Any] | None:
        return next((m for m in graph_world.graph.sent_items() if "jo.bloggs@council.example" in str(m["toRecipients"])), None)

    sent = await eventually(reply, what="the FAQ answer by mail")
    assert answer.split()[0] in sent["body"]["content"]
    [row] = await mail_bot.question_rows()
    assert (row["source"], row["status"]) == ("mail", "answered_faq")


async def test_a_mail_question_asked_while_an_event_is_open_belongs_to_that_event(
    mail_bot: Bot, graph_world: GraphWorld
) -> None:
    engine = create_engine(mail_bot.settings.database_url)
    try:
        async with Store(engine).unit() as unit:  # a host opened the all-staff briefing
            event_id, _ = await unit.events.open(
                "All-staff briefing", description=None, ends_at=None, by="host@council.example"
            )
    finally:
        await engine.dispose()
    graph_world.graph.deliver_to_inbox(
        "jo.bloggs@council.example", "Question for the briefing", text=OFF_TOPIC, sender_name="Jo Bloggs",
    )

    async def recorded() -> list[dict[str, Any]]:
        return await mail_bot.question_rows()

    [row] = await eventually(recorded, what="the mailed question")
    assert (row["source"], row["event_id"]) == ("mail", event_id)


async def test_automatic_and_outside_mail_is_never_answered(mail_bot: Bot, graph_world: GraphWorld) -> None:
    graph_world.graph.deliver_to_inbox(
        "away@council.example", "Automatic reply: Out of office", text="I am away until Monday.",
        headers={"Auto-Submitted": "auto-replied"},
    )
    graph_world.graph.deliver_to_inbox("stranger@elsewhere.example", "Question", text="What is your pay scale?")
    graph_world.graph.deliver_to_inbox(
        "mailer-daemon@council.example", "Undeliverable: Q-9", text="Delivery has failed.",
        headers={"Return-Path": "<>"},
    )
    await eventually(lambda: _processed(graph_world, 3), what="three mails handled")
    await mail_bot.drained()
    assert await mail_bot.question_rows() == []
    assert graph_world.graph.sent_items() == []


async def _processed(world: GraphWorld, count: int) -> bool:
    tagged = [m for m in world.graph.inbox() if "Bot: handled" in (m.get("categories") or [])]
    return len(tagged) >= count
