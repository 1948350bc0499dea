"""The whole loop through Microsoft Graph: forward, moderator reply, answer in Teams; mail questions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from store.db import create_engine
from store.store import Store
from tests.e2e.conftest import OFF_TOPIC, Bot, an_faq_entry, bot_settings, eventually, graph_mail_env, resolved, serving
from tests.support.channel import FakeChannel
from tests.support.graph import GraphWorld, GraphWorldThread

NOT_TRUSTED = "Bot: not trusted"


@pytest.fixture
async def default_mail_bot(
    channel: FakeChannel, graph_world: GraphWorld, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Bot]:
    """The bot as an operator sets it up: SHARED_MAILBOX and the Graph credentials, nothing else
    about mail (no MODERATORS_ADDRESS, MODERATOR_SENDERS or STAFF_MAIL_DOMAINS)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(channel.ca_bundle))
    env = {k: v for k, v in graph_mail_env(graph_world).items() if k not in ("MODERATOR_SENDERS", "STAFF_MAIL_DOMAINS")}
    settings = bot_settings(channel, database_url, tmp_path, MODERATORS_ADDRESS="", **env)
    async with serving(channel, settings) as bot:
        await eventually(bot.mailbox_baseline_taken, what="the first mailbox sync")
        yield bot


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


async def test_a_colleague_can_ask_by_mail_and_gets_the_faq_answer_by_mail(
    mail_bot: Bot, graph_world: GraphWorld
) -> None:
    _, question, answer = an_faq_entry()
    message_id = "<ask-1@council.example>"
    graph_world.graph.deliver_to_inbox(
        "jo.bloggs@council.example", "A question", text=question, sender_name="Jo Bloggs", message_id=message_id
    )

    async def reply() -> dict[str, Any] | None:
        return next(
            (m for m in graph_world.graph.sent_items() if "jo.bloggs@council.example" in str(m["toRecipients"])), None
        )

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
        "jo.bloggs@council.example",
        "Question for the briefing",
        text=OFF_TOPIC,
        sender_name="Jo Bloggs",
    )

    async def recorded() -> list[dict[str, Any]]:
        return await mail_bot.question_rows()

    [row] = await eventually(recorded, what="the mailed question")
    assert (row["source"], row["event_id"]) == ("mail", event_id)


async def test_automatic_and_outside_mail_is_never_answered(mail_bot: Bot, graph_world: GraphWorld) -> None:
    graph_world.graph.deliver_to_inbox(
        "away@council.example",
        "Automatic reply: Out of office",
        text="I am away until Monday.",
        headers={"Auto-Submitted": "auto-replied"},
    )
    graph_world.graph.deliver_to_inbox("stranger@elsewhere.example", "Question", text="What is your pay scale?")
    graph_world.graph.deliver_to_inbox(
        "mailer-daemon@council.example",
        "Undeliverable: Q-9",
        text="Delivery has failed.",
        headers={"Return-Path": "<>"},
    )
    await eventually(lambda: _processed(graph_world, 3), what="three mails handled")
    await mail_bot.drained()
    assert await mail_bot.question_rows() == []
    assert graph_world.graph.sent_items() == []


async def _processed(world: GraphWorld, count: int) -> bool:
    tagged = [m for m in world.graph.inbox() if {"Bot: handled", NOT_TRUSTED} & set(m.get("categories") or [])]
    return len(tagged) >= count


def _categories(world: GraphWorld, imm: str) -> list[str]:
    return list(world.graph.message(imm).get("categories") or [])


async def _answers_in_teams(bot: Bot, words: str) -> list[Any]:
    return [r for r in bot.channel.connector.posts() if r.text and words in r.text]


async def test_outlook_reply_as_the_shared_mailbox_is_the_answer_out_of_the_box(
    default_mail_bot: Bot, graph_world: GraphWorld
) -> None:
    """Ask in Teams; the forward lands in the shared mailbox (it is also the forwarding address);
    a moderator replies from Outlook *as* the mailbox; the colleague gets the answer, once."""
    bot = default_mail_bot
    asked = await bot.say(bot.channel.new_user("Tom Reed"), OFF_TOPIC)
    [forward] = await _forwarded(graph_world)
    [own] = await eventually(
        lambda: resolved([m for m in graph_world.graph.inbox() if m["subject"] == forward["subject"]]),
        what="the forward in the mailbox's Inbox",
    )
    reply = graph_world.graph.deliver_to_inbox(
        graph_world.mailbox,
        f"RE: {forward['subject']}",
        sender_name="Staff questions",
        text="Yes, on 12 December at 6pm.\n\nFrom: Staff questions\nSent: today\n" + OFF_TOPIC,
        in_reply_to=forward["internetMessageId"],
    )
    [answer] = await eventually(lambda: _answers_in_teams(bot, "12 December"), what="the answer in Teams")
    assert answer.conversation_id == asked["conversation"]["id"]
    await eventually(lambda: _processed(graph_world, 2), what="both mails handled")
    await bot.drained()
    assert len(await _answers_in_teams(bot, "12 December")) == 1
    assert _categories(graph_world, own["id"]) == ["Bot: handled"]  # its own forward: not an answer
    assert _categories(graph_world, reply) == ["Bot: handled"]
    [row] = await bot.question_rows()
    assert row["status"] == "answered"


async def test_a_granted_moderators_own_reply_is_the_answer_by_default(
    default_mail_bot: Bot, graph_world: GraphWorld
) -> None:
    bot = default_mail_bot
    engine = create_engine(bot.settings.database_url)
    try:
        async with Store(engine).unit() as unit:  # an admin granted the role (in Teams or cli.py roles)
            await unit.roles.grant("mo.derator@council.example", "moderator", by="admin@council.example")
    finally:
        await engine.dispose()
    await bot.say(bot.channel.new_user("Tom Reed"), OFF_TOPIC)
    [forward] = await _forwarded(graph_world)
    graph_world.graph.deliver_to_inbox(
        "not.a.moderator@council.example",
        f"RE: {forward['subject']}",
        text="Friday, I think.",
        in_reply_to=forward["internetMessageId"],
    )
    graph_world.graph.deliver_to_inbox(
        "Mo.Derator@council.example",
        f"RE: {forward['subject']}",
        text="Yes, on 12 December.",
        in_reply_to=forward["internetMessageId"],
    )
    await eventually(lambda: _answers_in_teams(bot, "12 December"), what="the answer in Teams")
    await eventually(lambda: _processed(graph_world, 3), what="all mails handled")
    await bot.drained()
    assert len(await _answers_in_teams(bot, "12 December")) == 1
    assert not await _answers_in_teams(bot, "Friday")


@pytest.mark.parametrize("via", ["internet", "forged AuthAs", "DMARC fail"])
async def test_a_spoofed_moderator_reply_is_never_delivered(mail_bot: Bot, graph_world: GraphWorld, via: str) -> None:
    """The moderators' own address, the right thread and [Q-1], but Exchange does not vouch for
    it: not stored, not sent, tagged for a person to look at."""
    await mail_bot.say(mail_bot.channel.new_user("Pat Target"), OFF_TOPIC)
    [forward] = await _forwarded(graph_world)
    await mail_bot.drained()
    posts, outbox = len(mail_bot.channel.connector.posts()), await mail_bot.outbox_count()
    headers = {
        "internet": {},
        # the header firewall drops what an internet sender writes in Exchange's own headers
        "forged AuthAs": {
            "X-MS-Exchange-Organization-AuthAs": "Internal",
            "X-MS-Exchange-Organization-AuthSource": "AM9PR07MB7105.eurprd07.prod.outlook.com",
        },
        "DMARC fail": {
            "Authentication-Results": "spf=fail smtp.mailfrom=council.example; dkim=fail "
            "header.d=council.example;dmarc=fail action=none header.from=council.example"
        },
    }[via]
    spoof = graph_world.graph.deliver_to_inbox(
        "moderator.one@council.example",
        f"RE: {forward['subject']}",
        sender_name="Moderator One",
        text="Please re-enter your password at http://evil.example/login",
        headers=headers,
        in_reply_to=forward["internetMessageId"],
        from_internet=via != "DMARC fail",
    )
    await eventually(lambda: resolved(NOT_TRUSTED in _categories(graph_world, spoof)), what="the spoof tagged")
    await mail_bot.drained()
    assert len(mail_bot.channel.connector.posts()) == posts
    assert await mail_bot.outbox_count() == outbox
    assert [row["status"] for row in await mail_bot.question_rows()] == ["forwarded"]
    assert len(graph_world.graph.sent_items()) == 1  # the forward, nothing since


async def test_the_askers_own_reply_is_a_follow_up_for_the_team_never_an_answer(
    mail_bot: Bot, graph_world: GraphWorld
) -> None:
    """MODERATOR_SENDERS=@council.example, and the asker is in that domain: their "that didn't
    help" reopens the question and goes to the moderators; nothing reaches them as an answer."""
    _, question, _ = an_faq_entry()
    graph_world.graph.deliver_to_inbox(
        "jo.bloggs@council.example", "A question", text=question, message_id="<ask-2@council.example>"
    )

    async def faq_answer() -> dict[str, Any] | None:
        return next((m for m in graph_world.graph.sent_items() if "jo.bloggs" in str(m["toRecipients"])), None)

    answered = await eventually(faq_answer, what="the FAQ answer by mail")
    graph_world.graph.deliver_to_inbox(
        "jo.bloggs@council.example",
        f"RE: {answered['subject']}",
        text="That didn't help: my case is different.",
        in_reply_to=answered["internetMessageId"],
    )

    async def follow_up() -> dict[str, Any] | None:
        return next((m for m in graph_world.graph.sent_items() if "Follow-up" in m["subject"]), None)

    sent = await eventually(follow_up, what="the follow-up to the moderators")
    assert sent["subject"].startswith("[Q-1] ") and "my case is different" in sent["body"]["content"]
    assert sent["toRecipients"][0]["emailAddress"]["address"] == graph_world.mailbox
    await mail_bot.drained()
    [row] = await mail_bot.question_rows()
    assert row["status"] == "forwarded"
    assert len([m for m in graph_world.graph.sent_items() if "jo.bloggs" in str(m["toRecipients"])]) == 1


async def test_an_away_reply_without_automatic_headers_is_never_an_answer(
    mail_bot: Bot, graph_world: GraphWorld
) -> None:
    await mail_bot.say(mail_bot.channel.new_user("Al Away"), OFF_TOPIC)
    [forward] = await _forwarded(graph_world)
    graph_world.graph.deliver_to_inbox(
        "moderator.one@council.example",
        f"Away: {forward['subject']}",
        text="I am away until Monday.",
        in_reply_to=forward["internetMessageId"],
    )
    await eventually(lambda: _processed(graph_world, 2), what="the mails handled")  # the forward, then this
    await mail_bot.drained()
    assert len(mail_bot.channel.connector.posts()) == 1  # only "sent to the team"
    assert [row["status"] for row in await mail_bot.question_rows()] == ["forwarded"]


async def _healthz_latencies(bot: Bot, until: asyncio.Event) -> list[float]:
    """/healthz asked every 10 ms until the event is set."""
    latencies: list[float] = []
    while not until.is_set():
        started = time.perf_counter()
        response = await bot.client.get("/healthz")
        assert response.status == 200
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)
    return latencies


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _loop_work(until: asyncio.Event) -> list[float]:
    """CPU time the event loop's thread spends between two 5 ms ticks: what blocks the loop.
    Unlike wall time it does not count the process waiting for a core on a busy machine."""
    busy: list[float] = []
    while not until.is_set():
        cpu = time.thread_time()
        await asyncio.sleep(0.005)
        busy.append(time.thread_time() - cpu)
    return busy


async def test_a_10_mb_mail_delays_healthz_by_less_than_100_ms(
    channel: FakeChannel, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A moderator's reply with 10 MB of HTML under the answer: the bot takes the answer; the
    event loop never works 100 ms without a break, and /healthz, asked every 10 ms meanwhile,
    stays within 100 ms of its latency just before. The Graph server runs on its own thread, so
    what is measured is the bot's own work."""
    servers = GraphWorldThread()
    world = await servers.start(tmp_path, mailbox="staff-questions@council.example")
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(channel.ca_bundle))
        settings = bot_settings(channel, database_url, tmp_path, MODERATORS_ADDRESS="", **graph_mail_env(world))
        async with serving(channel, settings) as bot:
            await eventually(bot.mailbox_baseline_taken, what="the first mailbox sync")
            await bot.say(bot.channel.new_user("Lara Large"), OFF_TOPIC)

            async def forwarded() -> list[dict[str, Any]]:
                return [m for m in await servers.call(world.graph.sent_items) if m["subject"].startswith("[Q-")]

            [forward] = await eventually(forwarded, what="the forward")
            await bot.drained()  # the acknowledgement and the forward are out: the bot is idle
            filler = "<p>" + "history " * 12 + "<b>quoted</b></p>\n"
            html = "<p>Yes, on 12 December.</p><blockquote>" + filler * (10_000_000 // len(filler)) + "</blockquote>"
            assert len(html) >= 10_000_000
            a_second = asyncio.Event()
            asyncio.get_running_loop().call_later(1.0, a_second.set)
            before = await _healthz_latencies(bot, a_second)
            answered = asyncio.Event()
            during = asyncio.create_task(_healthz_latencies(bot, answered))
            loop_work = asyncio.create_task(_loop_work(answered))
            await servers.call(
                world.graph.deliver_to_inbox,
                "moderator.one@council.example",
                f"RE: {forward['subject']}",
                html=html,
                in_reply_to=forward["internetMessageId"],
            )
            await eventually(lambda: _answers_in_teams(bot, "12 December"), timeout=30, what="the answer")
            answered.set()
            latencies, busy = await during, await loop_work
        assert len(latencies) > 10, "the health check ran while the mail was read"
        assert max(busy) < 0.1, f"the event loop ran {max(busy) * 1000:.0f} ms of work without a break"
        # Wall time on a machine shared with other work has spikes whatever the bot does (a
        # process waiting for a core), so the typical request is compared; the loop's own work,
        # above, bounds what the bot itself can add to any one request.
        delay = _percentile(latencies, 0.5) - _percentile(before, 0.5)
        assert delay < 0.1, f"/healthz typically {delay * 1000:.0f} ms slower than before the mail"
    finally:
        await servers.stop()
