"""Loops that close: no question waits without a card, claims are respected, support and
second tries are answered for what they are, and a click never waits for the FAQ rebuild.
Over real HTTP with the local Bot Framework channel."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from handlers.mail_file import read_mail_file
from mail.inbound import is_automatic
from tests.e2e.conftest import OFF_TOPIC, Bot, an_faq_entry
from tests.e2e.test_live_events import (
    ADMIN_EMAIL,
    HOSTS_CHANNEL,
    MODERATORS_CHANNEL,
    _actions,
    _button,
    _cards_in,
    _click,
    _command,
    _moderated_question,
    _staff,
)
from tests.e2e.test_offline_mail import receive, reply_to

WAITING = 12  # more than one page of cards


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"ADMINS": ADMIN_EMAIL}


def _said_in(bot: Bot, conversation_prefix: str, words: str) -> list[Any]:
    return [r for r in bot.channel.connector.posts()
            if r.conversation_id.startswith(conversation_prefix) and words in (r.text or "")]


def _card_refs(bot: Bot) -> list[str]:
    """The question each card posted in the moderators' channel is for, in posting order."""
    return [str(card.attachments[0]["content"]["body"][0]["items"][0]["text"]).split(" ")[0]
            for card in _cards_in(bot, MODERATORS_CHANNEL) if card.attachments]


async def test_moderate_here_posts_cards_for_questions_already_waiting_a_page_at_a_time(bot: Bot) -> None:
    people = await _staff(bot)
    asker = bot.channel.new_user("Sam Staff")
    for n in range(WAITING):
        await bot.say(asker, f"{OFF_TOPIC} (asking for team {n + 1})")
    await bot.drained()
    assert [row["status"] for row in await bot.question_rows()] == ["forwarded"] * WAITING

    await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    await bot.drained()
    [told] = _said_in(bot, MODERATORS_CHANNEL, "moderators' queue")
    assert "10 questions already waiting get cards now, oldest first" in told.text
    assert "2 more are waiting: type **moderate here** again for the next 10" in told.text
    assert _card_refs(bot) == [f"Q-{n}" for n in range(1, 11)]

    await _command(bot, people["mod2"], "moderate here", MODERATORS_CHANNEL)
    await bot.drained()
    assert _card_refs(bot) == [f"Q-{n}" for n in range(1, WAITING + 1)]  # each once, oldest first

    # show Q-n: moderators only; the card is posted again at the bottom of the channel.
    stranger = bot.channel.new_user("Nora Nobody")
    await _command(bot, stranger, "show Q-3", MODERATORS_CHANNEL)
    await _command(bot, people["mod1"], "show Q-3", MODERATORS_CHANNEL)
    await bot.drained()
    assert _said_in(bot, MODERATORS_CHANNEL, "needs the moderator role")
    assert _card_refs(bot)[-1] == "Q-3" and len(_card_refs(bot)) == WAITING + 1
    assert len(await bot.question_rows()) == WAITING  # neither command became a question


async def test_a_claimed_question_asks_another_moderator_to_confirm_before_answering(bot: Bot) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    claimed = await bot.post(_click(bot, people["mod2"], card, here, _button(card, "Claim")))
    assert (await claimed.json())["value"] == "You claimed Q-1."
    await bot.drained()
    card_now = _cards_in(bot, MODERATORS_CHANNEL, "update")[-1]
    assert "Claimed by Max Two" in str(card_now.body) and "Release" in str(card_now.body)

    send = _button(card, "Send answer")
    first = await bot.post(_click(bot, people["mod1"], card, here, send, answer="Yes, at 6pm."))
    told = (await first.json())["value"]
    assert told.startswith("Q-1 is claimed by Max Two; send anyway?") and "was not sent" in told
    await bot.drained()
    assert [row["status"] for row in await bot.question_rows()] == ["claimed"]
    assert not [r for r in bot.channel.connector.posts() if "Yes, at 6pm." in (r.text or "")]

    anyway = await bot.post(_click(bot, people["mod1"], card, here, send, answer="Yes, at 6pm.",
                                   send_anyway="true"))
    assert (await anyway.json())["value"] == "Your answer to Q-1 is on its way to the colleague."
    await bot.drained()
    assert len([r for r in bot.channel.connector.posts() if "Yes, at 6pm." in (r.text or "")]) == 1

    # The claimer answers without being asked to confirm (here: a second answer is refused).
    own = await bot.post(_click(bot, people["mod2"], card, here, send, answer="Also 6pm."))
    assert "already answered" in (await own.json())["value"]


async def test_me_too_on_your_own_question_is_refused_and_supporters_get_the_answer_once(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["host"], "open event Town hall", HOSTS_CHANNEL)
    asker, here, card = await _moderated_question(bot, people)
    kim, lee = bot.channel.new_user("Kim Kind"), bot.channel.new_user("Lee Listener")
    await bot.say(asker, "me too Q-1")
    await bot.say(kim, "me too Q-1")
    await bot.say(kim, "me too Q-1")
    await _command(bot, lee, "me too Q-1", "19:general@thread.tacv2")  # said in a channel
    await bot.drained()
    assert _said_in(bot, "a:", "Q-1 is your own question, so it counts already")
    assert _said_in(bot, "a:", "Noted: you want Q-1 answered too.")
    assert [row["support"] for row in await bot.question_rows()] == [2]  # Kim and Lee, not the asker

    answer = await bot.post(_click(bot, people["mod1"], card, here, _button(card, "Send answer"),
                                   answer="Yes, on 19 December."))
    assert answer.status == 200
    await bot.drained()
    answers = [r for r in bot.channel.connector.posts() if "Yes, on 19 December." in (r.text or "")]
    supported = [r for r in answers if "An answer to the question Q-1, which you supported" in r.text]
    assert len(answers) == 3 and len(supported) == 2  # the asker once, each supporter once
    assert all(r.conversation_id.startswith("a:") for r in answers)  # each in their own personal chat
    assert len({r.conversation_id for r in answers}) == 3
    assert not [r for r in supported if "Helpful" in str(r.attachments)]  # the buttons are the asker's


async def test_a_second_open_event_with_the_same_title_asks_first(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["host"], "open event Town hall", HOSTS_CHANNEL)
    await _command(bot, people["host"], "open event  town HALL", HOSTS_CHANNEL)
    await bot.drained()
    [asked] = _said_in(bot, HOSTS_CHANNEL, "is already open")
    assert "**E-1** (Town hall) is already open" in asked.text
    assert "type **open another event Town hall**" in asked.text and "Nothing was changed" in asked.text
    await _command(bot, people["host"], "events", HOSTS_CHANNEL)
    await bot.drained()
    [listed] = _said_in(bot, HOSTS_CHANNEL, "**E-1**")[-1:]
    assert "E-2" not in listed.text

    await _command(bot, people["host"], "open another event Town hall", HOSTS_CHANNEL)
    await bot.drained()
    assert _said_in(bot, HOSTS_CHANNEL, "Event **E-2** (Town hall) is open")


async def test_no_send_it_to_the_team_says_exactly_that(bot: Bot) -> None:
    _, question, _ = an_faq_entry()
    user = bot.channel.new_user("Ned Submit")
    asked = await bot.say(user, question)
    [answer] = await bot.channel.connector.wait_for(1)
    no = answer.attachments[0]["content"]["actions"][1]
    assert no["title"] == "No, send it to the team"
    click = bot.channel.activities.card_submit(user, no["data"], reply_to_id=answer.created_id, context=asked)
    assert (await bot.post(click)).status == 200
    [_, told] = await bot.channel.connector.wait_for(2)
    assert "I've sent your question to the team as you asked (reference **Q-1**)" in told.text
    assert "couldn't find a confident answer" not in told.text


async def test_add_to_faq_answers_the_click_at_once_and_the_faq_answers_after(bot: Bot) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    await bot.post(_click(bot, people["mod1"], card, here, _button(card, "Send answer"),
                          answer="Yes, the choir sings on 19 December."))
    await bot.drained()
    answered = _cards_in(bot, MODERATORS_CHANNEL, "update")[-1]
    add = next(action for action in _actions(answered.attachments[0]["content"])
               if action["title"] == "Add to FAQ" and action["type"] == "Action.Execute")
    started = time.monotonic()
    response = await bot.post(_click(bot, people["mod1"], card, here, add, faq_question=OFF_TOPIC,
                                     faq_answer="Yes, the choir sings on 19 December."))
    took = time.monotonic() - started
    assert (await response.json())["value"].startswith("Q-1 is in the FAQ now")
    assert took < 1.0, f"the click waited {took:.1f} s"

    await bot.drained()  # the rebuild is a job: done once the outbox is
    await bot.say(bot.channel.new_user("Later Asker"), OFF_TOPIC)
    await bot.drained()
    assert (await bot.question_rows())[-1]["status"] == "answered_faq"


async def test_an_answer_given_in_teams_is_recorded_in_the_mailbox_thread(bot: Bot) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    await bot.drained()
    [forward_path] = bot.mails()
    forward = BytesParser(policy=policy.default).parsebytes(forward_path.read_bytes())
    await bot.post(_click(bot, people["mod1"], card, here, _button(card, "Send answer"),
                          answer="Yes, on 19 December at 6pm."))
    await bot.drained()
    [note_path] = [path for path in bot.mails() if path != forward_path]
    note = BytesParser(policy=policy.default).parsebytes(note_path.read_bytes())
    assert note["In-Reply-To"] == forward["Message-ID"] and note["Subject"].startswith("Re: [Q-1] ")
    assert note["To"] == forward["To"]
    text = note.get_body(("plain",)).get_content()
    assert "Q-1 was answered in Teams by Mo One" in text and "Yes, on 19 December at 6pm." in text
    # Marked as the bot's own: reading the mailbox, the bot ignores it.
    assert is_automatic(read_mail_file(note_path, datetime.now(UTC))) == "sent by this bot (X-Bot-Key)"


async def test_a_mail_answer_after_a_teams_answer_is_a_follow_up_on_the_card(bot: Bot, tmp_path: Path) -> None:
    people = await _staff(bot)
    _, here, card = await _moderated_question(bot, people)
    await bot.post(_click(bot, people["mod1"], card, here, _button(card, "Send answer"), answer="The 19th."))
    await bot.drained()
    [forward] = [path for path in bot.mails() if path.name.startswith("forward-")]
    reply = tmp_path / "reply.eml"
    reply.write_bytes(reply_to(forward, "A correction: it is the 20th."))
    assert (await receive(bot, reply))[0] == 0
    await bot.drained()
    to_asker = [r.text for r in bot.channel.connector.posts() if r.conversation_id.startswith("a:")]
    assert any("An answer to your question Q-1" in text and "The 19th." in text for text in to_asker)
    assert any("More on your question Q-1" in text and "the 20th" in text for text in to_asker)
    shown = str(_cards_in(bot, MODERATORS_CHANNEL, "update")[-1].body)
    assert shown.index("The 19th.") < shown.index("Follow-up by mail") < shown.index("A correction: it is the 20th.")


async def test_a_forward_mail_starts_with_the_question_and_marks_a_private_one(bot: Bot) -> None:
    await bot.say(bot.channel.new_user("Pat Person"), f"ask privately {OFF_TOPIC}")
    await bot.drained()
    [path] = bot.mails()
    mail = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    text = mail.get_body(("plain",)).get_content()
    assert text.startswith("PRIVATE: an HR or wellbeing question.")
    order = ["Question Q-1:", OFF_TOPIC, "Reply to this mail", "Asked by:"]
    assert [text.index(part) for part in order] == sorted(text.index(part) for part in order)
    html = mail.get_body(("html",)).get_content()
    assert html.index("<strong>PRIVATE</strong>") < html.index("Question Q-1") < html.index("Asked by")
