"""The handlers over a chat platform that is not Teams (tests/support/console_channel.py).

Nothing Teams-shaped is given to them: the same commands, triage, forward, moderation card and
answer run over the console channel's own addresses, with a real store and the real outbox
worker, and every message lands where a colleague would look for it there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.settings import BUNDLED_FAQ
from domain.cards import Moderate, Op
from domain.replies import Answer, Board, Forwarded, Notice, QuestionCard
from faq.live import live_matcher_for_file
from handlers import commands, moderation
from handlers.channels import SOURCE, UnknownChannel
from handlers.deps import Deps, Limits
from handlers.jobs import job_runners
from handlers.queue import MODERATORS_CHANNEL
from handlers.reminders import remind_waiting
from handlers.roles import Actor
from handlers.subjects import erase_subject
from mail.eml import EmlOutbox
from outbox.retry import RetryPolicy
from outbox.worker import OutboxWorker
from store.records import Question, QuestionStatus
from store.store import Store
from tests.privacy.seed import dump
from tests.support.console_channel import CONSOLE, ConsoleChannel, Person

ANN = Person("ann", "Ann Asker", "ann@example.org")
BOB = Person("bob", "Bob Quiet", "bob@example.org")
CAL = Person("cal", "Cal Uninstalled", "cal@example.org", installed=False)
MO = Person("mo", "Mo Moderator", "mo@example.org")
QUESTION = "Will the staff choir be singing at the Shire Hall carol service this year?"
PRIVATE = "Can I change my working pattern after returning from sick leave?"
MODERATORS = "moderators"
GENERAL = "general"
HOSTS = "hosts"


@dataclass
class Bot:
    deps: Deps
    console: ConsoleChannel
    outbox_dir: Path

    async def say(self, person: Person, room: str, text: str) -> None:
        await commands.handle_text(self.deps, self.console.said(person, room, text))

    async def answer(self, question_id: int, text: str) -> None:
        said = self.console.said(MO, MODERATORS, "")
        actor = Actor(id=MO.id, aad_id=MO.id, name=MO.name, email=None)
        done = await moderation.act(self.deps, said, actor, Moderate(Op.ANSWER, question_id, answer=text))
        assert isinstance(done, Notice) and "on its way" in done.text, done

    async def cards(self) -> list[QuestionCard]:
        """The moderation cards in the moderators' room, once there is one."""
        await _until(lambda: bool(self.cards_now()))
        return self.cards_now()

    def cards_now(self) -> list[QuestionCard]:
        return [m for m in self.console.in_room(MODERATORS) if isinstance(m, QuestionCard)]

    def mails(self) -> list[str]:
        return [path.read_text() for path in sorted(self.outbox_dir.glob("*.eml"))]

    async def drained(self) -> None:
        """Once the outbox has nothing left to do: "nothing more was sent" is then a fact."""

        async def backlog() -> int:
            async with self.deps.store.unit() as unit:
                return (await unit.outbox.backlog())[0]

        for _ in range(400):
            if not await backlog():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the outbox still has jobs to do")

    async def asked(self, person: Person) -> Question:
        async with self.deps.store.unit() as unit:
            (question,) = await unit.questions.of_asker(person.id, person.id)
        return question


@pytest.fixture
async def bot(store: Store, tmp_path: Path) -> AsyncIterator[Bot]:
    console = ConsoleChannel([ANN, BOB, CAL, MO])
    outbox_dir = tmp_path / "outbox"
    deps = Deps(
        store=store,
        faq=live_matcher_for_file(BUNDLED_FAQ, threshold=None, min_precision=0.97),
        mail=EmlOutbox(outbox_dir, "questions-bot@example.org"),
        limits=Limits(2000, "questions@example.org"),
        log=logging.getLogger("console"),
        clock=store.clock,
        channels={CONSOLE: console},  # and no Teams at all
        admins=frozenset({MO.email}),
    )
    worker = OutboxWorker(
        store,
        job_runners(deps),  # the app's own registry: every kind, over the console channel
        retry=RetryPolicy(base_seconds=0.05, max_seconds=0.2),
        poll_seconds=0.05,
        lease_seconds=30,
    )
    store.after_enqueue = worker.wake
    running = asyncio.create_task(worker.run())
    try:
        yield Bot(deps, console, outbox_dir)
    finally:
        await worker.stop()
        await running


async def test_a_question_asked_in_another_channel_is_forwarded_answered_and_the_answer_reaches_the_asker(
    bot: Bot, store: Store
) -> None:
    await bot.say(MO, MODERATORS, "moderate here")
    await bot.say(ANN, "dm:ann", QUESTION)

    told = await bot.console.wait_for("dm:ann", 1)
    assert isinstance(told[0], Forwarded)
    (card,) = await bot.cards()
    assert card.text == QUESTION
    assert card.asker == ANN.name
    assert card.asked_in == "a 1:1 console chat with the bot"  # in the console's words, not Teams'
    async with store.unit() as unit:
        (question,) = await unit.questions.of_asker(ANN.id, ANN.id)
    assert question.source == CONSOLE and question.status is QuestionStatus.FORWARDED
    # The forward to the moderators' mailbox names the asker as the console's directory does.
    (forward,) = [mail for mail in bot.mails() if QUESTION[:40] in mail]
    assert ANN.email in forward and ANN.id in bot.console.looked_up
    assert "Asked in:     a 1:1 console chat with the bot" in forward

    await bot.answer(question.id, "Yes: rehearsals start on Monday in the Shire Hall.")
    told = await bot.console.wait_for("dm:ann", 2)
    assert isinstance(told[1], Answer) and "rehearsals start on Monday" in told[1].answer
    # the card in the moderators' room was updated in place, not posted again
    await _until(lambda: bot.cards_now()[0].status is QuestionStatus.ANSWERED)
    assert len(bot.cards_now()) == 1
    # ...and the mail thread the moderators work from shows the answer given in the chat
    await _until(lambda: any("rehearsals start on Monday" in mail for mail in bot.mails()))


async def test_a_private_question_asked_in_a_shared_room_is_answered_in_the_1_to_1_chat(bot: Bot, store: Store) -> None:
    await bot.say(MO, MODERATORS, "moderate here")
    await bot.say(BOB, GENERAL, f"ask privately {PRIVATE}")

    (in_room,) = await bot.console.wait_for(GENERAL, 1)
    assert isinstance(in_room, Notice) and "personal chat" in in_room.text
    acknowledged = (await bot.console.wait_for("dm:bob", 1))[0]
    assert isinstance(acknowledged, Notice)
    assert PRIVATE in acknowledged.text and "the console room “general”" in acknowledged.text
    (card,) = await bot.cards()
    assert card.asked_in == "the console room “general”"
    async with store.unit() as unit:
        (question,) = await unit.questions.of_asker(BOB.id, BOB.id)
    assert question.private

    await bot.answer(question.id, "Yes: talk to HR about a phased return.")
    await _until(lambda: any(isinstance(m, Answer) for m in bot.console.in_room("dm:bob")))
    (answer,) = [m for m in bot.console.in_room("dm:bob") if isinstance(m, Answer)]
    assert "phased return" in answer.answer
    assert all(PRIVATE not in str(m) and "phased return" not in str(m) for m in bot.console.in_room(GENERAL))


async def test_a_private_question_is_not_recorded_when_the_channel_refuses_a_1_to_1_chat(
    bot: Bot, store: Store
) -> None:
    await bot.say(CAL, GENERAL, f"ask anonymously {PRIVATE}")

    (told,) = await bot.console.wait_for(GENERAL, 1)
    assert isinstance(told, Notice) and "can't open a personal chat" in told.text
    async with store.unit() as unit:
        assert await unit.questions.of_asker(CAL.id, CAL.id) == []


async def test_show_and_the_reminder_post_anew_in_the_moderators_room_wherever_it_was_set_up(bot: Bot) -> None:
    await bot.say(MO, MODERATORS, "moderate here")
    await bot.say(ANN, "dm:ann", QUESTION)
    await bot.cards()
    ref = (await bot.asked(ANN)).ref

    await bot.say(MO, GENERAL, f"show {ref}")  # typed elsewhere: told where the card is
    (told,) = await bot.console.wait_for(GENERAL, 1)
    assert told == Notice(f"{ref}'s card is posted in the moderators' channel.")
    await _until(lambda: len(bot.cards_now()) == 2)
    await bot.say(MO, MODERATORS, f"show {ref}")  # typed in the room itself: the card is the answer
    await _until(lambda: len(bot.cards_now()) == 3)
    await bot.drained()
    assert [type(m) for m in bot.console.in_room(MODERATORS)] == [Notice, *[QuestionCard] * 3]

    later = datetime.now(UTC) + timedelta(days=2)
    assert await remind_waiting(bot.deps.store, bot.deps.channel, after=timedelta(hours=24), now=later) == 1
    reminder = (await bot.console.wait_for(MODERATORS, 5))[-1]
    assert isinstance(reminder, Notice) and f"**{ref}** (not claimed, waiting 48 h)" in reminder.text
    posted = [post for post in bot.console.posted if post.message is reminder]
    assert [post.reply_to for post in posted] == [None]  # a post of its own, not a reply to a command


async def test_erasing_who_set_up_the_rooms_leaves_nothing_of_them_in_what_is_kept_and_the_rooms_work(
    bot: Bot, store: Store
) -> None:
    await bot.say(MO, MODERATORS, "moderate here")
    await bot.say(MO, HOSTS, "open event Carol service")
    await bot.say(MO, HOSTS, "board here")
    await bot.drained()

    erasure = await erase_subject(store, MO.email)
    assert erasure.done["events_anonymised"] == 1  # the event they opened stays, naming nobody
    async with store.unit() as unit:
        (event,) = await unit.events.open_events()
        kept = [json.loads(await unit.state.get(MODERATORS_CHANNEL) or "{}"), event.board_address]
    assert kept == [{"room": MODERATORS, SOURCE: CONSOLE}, {"room": HOSTS, SOURCE: CONSOLE}]
    everything = await dump(store)
    assert MO.name not in everything and MO.email not in everything

    await bot.say(ANN, "dm:ann", QUESTION)  # the rooms still get their cards
    (card,) = await bot.cards()
    assert card.text == QUESTION
    await _until(lambda: any(isinstance(m, Board) and any(line.text == QUESTION for line in m.newest)
                             for m in bot.console.in_room(HOSTS)))


async def test_a_source_with_no_channel_is_refused_by_name(bot: Bot) -> None:
    with pytest.raises(UnknownChannel, match="no chat channel is configured for 'teams'"):
        bot.deps.channel("teams")


async def _until(condition: Callable[[], bool], timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)
