"""Two bot processes on one PostgreSQL database share the work and do nothing twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest

from store.db import create_engine
from store.store import Store
from tests.e2e.conftest import APP_ID, APP_PASSWORD, OFF_TOPIC, an_faq_entry, eventually, graph_mail_env, resolved
from tests.support.channel import FakeChannel
from tests.support.graph import GraphWorld
from tests.support.process import bot_process, free_port, wait_healthy

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
QUESTIONS_PER_INSTANCE = 10
DOG_ANSWER = "Dogs are welcome in the office on Fridays, on a lead, except in kitchens."


@pytest.fixture
async def instances(
    channel: FakeChannel, graph_world: GraphWorld, database_url: str, tmp_path: Path
) -> AsyncIterator[list[str]]:
    """Two `app.py` processes behind one database, one channel and one shared mailbox."""
    env = channel.bot_env(APP_ID, APP_PASSWORD)
    env.update(
        HOST="127.0.0.1",
        DATABASE_URL=database_url,
        OUTBOX_POLL_SECONDS="0.2",
        FAQ_RELOAD_SECONDS="1",
        **graph_mail_env(graph_world),
    )
    async with AsyncExitStack() as stack:
        urls = []
        for number in (1, 2):
            port = free_port()
            log = stack.enter_context((tmp_path / f"instance-{number}.log").open("wb"))
            await stack.enter_async_context(bot_process({**env, "PORT": str(port)}, output=log))
            urls.append(f"http://127.0.0.1:{port}")
        await asyncio.gather(*(wait_healthy(url) for url in urls))
        yield urls


async def test_two_instances_record_reply_and_mail_everything_once(
    instances: list[str], channel: FakeChannel, graph_world: GraphWorld
) -> None:
    _, faq_question, faq_answer = an_faq_entry()
    asked = []
    async with aiohttp.ClientSession() as session:
        for n in range(QUESTIONS_PER_INSTANCE * 2):
            user = channel.new_user(f"Colleague {n}", email=f"colleague.{n}@council.example")
            text = faq_question if n % 2 else f"{OFF_TOPIC} (asked by colleague {n})"
            activity = channel.activities.personal_message(user, text)
            # each activity reaches one instance, then is redelivered to the other, as Teams does
            # when an acknowledgement is slow
            for url in (instances[n % 2], instances[(n + 1) % 2]):
                async with await channel.deliver(session, activity, path=f"{url}/api/messages") as response:
                    assert response.status == 200
            asked.append(activity)

        replies = await channel.connector.wait_for(len(asked), timeout=60)
        forwarded = len(asked) // 2

        async def all_forwards_sent() -> list[dict] | None:
            sent = [m for m in graph_world.graph.sent_items() if m["subject"].startswith("[Q-")]
            return sent if len(sent) >= forwarded else None

        forwards = await eventually(all_forwards_sent, timeout=60, what="every forward in Sent Items")
        first = next(m for m in forwards if "colleague.0@council.example" in m["body"]["content"])
        graph_world.graph.deliver_to_inbox(
            "moderator.one@council.example", f"RE: {first['subject']}", text="Yes, on 12 December.",
            in_reply_to=first["internetMessageId"],
        )
        answer = await eventually(
            lambda: _found(channel, "12 December"), timeout=30, what="the moderator's answer in Teams"
        )
        await asyncio.sleep(2)  # time enough for a second instance to deliver anything twice

    assert answer.conversation_id == asked[0]["conversation"]["id"]
    posts = channel.connector.posts()
    assert len([p for p in posts if p.text and "12 December" in p.text]) == 1
    replied_to = Counter(p.activity_id for p in posts if p.kind == "reply" and p is not answer)
    assert replied_to == Counter({a["id"]: 1 for a in asked}), "every question answered exactly once"
    assert sum(1 for r in replies if r.attachments and faq_answer in str(r.attachments)) == forwarded
    subjects = Counter(m["subject"] for m in graph_world.graph.sent_items())
    assert len(subjects) == forwarded and set(subjects.values()) == {1}, "every forward sent once"


async def test_an_faq_entry_added_through_one_instance_is_answered_by_the_other(
    instances: list[str], channel: FakeChannel, database_url: str
) -> None:
    """A moderator's new entry is saved by the instance they used, which rebuilds its matcher at
    once; the other instance takes it in within FAQ_RELOAD_SECONDS, with no restart."""
    engine = create_engine(database_url)
    try:
        async with Store(engine).unit() as unit:  # what the first instance saves
            await unit.faq.add_entry(
                "can-i-bring-my-dog-to-the-office",
                question="Can I bring my dog to the office?",
                answer=DOG_ANSWER,
                question_id=None,
                created_by="moderator.one@council.example",
            )
    finally:
        await engine.dispose()

    async def answered_from_the_new_entry() -> object | None:
        activity = channel.activities.personal_message(
            channel.new_user("Dee Dogowner"), "Can I bring my dog to the office?"
        )
        async with (
            aiohttp.ClientSession() as session,
            await channel.deliver(session, activity, path=f"{instances[1]}/api/messages") as response,
        ):
            assert response.status == 200
        reply = await eventually(
            lambda: resolved(next((p for p in channel.connector.posts() if p.activity_id == activity["id"]), None)),
            timeout=30,
            what="the bot's reply",
        )
        return reply if DOG_ANSWER in str(reply.attachments) else None

    await eventually(answered_from_the_new_entry, timeout=30, what="an answer from the new FAQ entry")


async def _found(channel: FakeChannel, text: str) -> object | None:
    return next((p for p in channel.connector.posts() if p.text and text in p.text), None)
