"""A privacy walk, end to end over real HTTP (the local Bot Framework channel and Graph server).

One colleague asks named, anonymous and private questions in a personal chat, a team channel
and a meeting chat; moderators answer on cards and by mail; hosts watch the board, publish and
export. Then every artefact moderators, hosts and readers can see is scanned for what must not
be there: the colleague's identifiers next to an anonymous question, any raw Teams id, and
private questions and answers outside the colleague's own 1:1 chat and the moderators' queue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from cli import cli
from store.db import create_engine
from store.schema import audit_log, questions
from tests.e2e.conftest import APP_ID, Bot, bot_settings, eventually, graph_mail_env, resolved, serving
from tests.e2e.test_live_events import ADMIN_EMAIL, HOSTS_CHANNEL, MODERATORS_CHANNEL, _command, _staff
from tests.e2e.test_reminders_and_privacy import _card_for, _moderate
from tests.support.channel import ConnectorRequest, FakeChannel, personal_conversation_id
from tests.support.graph import GraphWorld

TEAM_CHANNEL = "19:payroll@thread.tacv2"
MEETING_CHAT = "19:meeting_briefing@thread.v2"
MEETING_ID = "MCMxOTptZWV0aW5nX2JyaWVmaW5n"

# What the colleague asks (none of it is in the staff FAQ, so every question goes to the team).
NAMED = {
    "personal": "Will the Shire Hall staff choir sing at the carol service this year?",
    "channel": "Is the Shire Hall roof terrace going to open for lunches this summer?",
    "meeting": "Could the next all-staff briefing be streamed to the Tarrant depot canteen?",
}
ANONYMOUS = {
    "personal": "Why was the Tarrant depot restructure announced before the unions heard?",
    "channel": "Are the Shire Hall cleaners being moved to a new contractor in spring?",
    "meeting": "Will the depot night shift allowance be cut in the new pay structure?",
}
PRIVATE = {
    "personal": "My manager mocks my stammer in meetings, who can I talk to in confidence?",
    "channel": "Can I get an advance on my salary, I am in debt with a payday lender?",
    "meeting": "I have a hospital appointment for my chemotherapy, can I leave early on Fridays?",
}
PRIVATE_ANSWERS = {
    "personal": "Please call Lee in HR on extension 4411 about the stammer; it stays confidential.",
    "channel": "Yes: ask payroll for form SA-2 for a salary advance; the debt advice line is 0800 11 22.",
    "meeting": "Yes, leave early on Fridays for the chemotherapy; your manager has been told nothing else.",
}
ANONYMOUS_ANSWERS = {
    "personal": "The restructure timing was a mistake; the unions have since been briefed.",
    "channel": "No contractor change is planned for the cleaners.",
    "meeting": "The night shift allowance stays in the new pay structure.",
}
NAMED_ANSWERS = {
    "personal": "Yes, the choir sings on 12 December.",
    "channel": "The roof terrace opens for lunches from June.",
    "meeting": "Yes, the briefing will be streamed to the depot canteen.",
}
WAITING = "Is the depot going to close over Christmas, and will anyone tell the drivers?"
OTHERS_QUESTION = "Will the Shire Hall car park be resurfaced before the spring?"


@pytest.fixture
async def walk_bot(
    channel: FakeChannel, graph_world: GraphWorld, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Bot]:
    """The bot with mail through the local Graph server, and an admin."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(channel.ca_bundle))
    settings = bot_settings(channel, database_url, tmp_path, MODERATORS_ADDRESS="", ADMINS=ADMIN_EMAIL,
                            **graph_mail_env(graph_world))
    async with serving(channel, settings) as bot:
        await eventually(bot.mailbox_baseline_taken, what="the first mailbox sync")
        yield bot


async def _ask(bot: Bot, activity: dict[str, Any]) -> dict[str, Any]:
    response = await bot.post(activity)
    assert response.status == 200, await response.text()
    return activity


async def _forwards(world: GraphWorld, count: int) -> list[dict[str, Any]]:
    async def sent() -> list[dict[str, Any]] | None:
        items = [m for m in world.graph.sent_items() if m["subject"].startswith("[Q-")]
        return items if len(items) >= count else None

    return await eventually(sent, timeout=30, what=f"{count} forwarded mails")


def _shown(request: ConnectorRequest) -> str:
    """What people see of a message the bot sent: its text and cards (not the addressing)."""
    return json.dumps({"text": request.text, "attachments": request.attachments}, ensure_ascii=False)


def _absent(needles: Iterable[str], haystack: str, where: str) -> None:
    found = [needle for needle in needles if needle and needle.lower() in haystack.lower()]
    assert not found, f"{where} shows {found}"


async def _cli(*args: str, bot: Bot) -> str:
    """A host's command line against the bot's database (in a thread: the CLI runs its own loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--database-url", bot.settings.database_url])
    assert result.exit_code == 0, result.output
    return result.stdout


async def _rows(bot: Bot, table: Any) -> list[dict[str, Any]]:
    engine = create_engine(bot.settings.database_url)
    try:
        async with engine.connect() as conn:
            return [dict(row) for row in (await conn.execute(select(table))).mappings().all()]
    finally:
        await engine.dispose()


async def test_private_and_anonymous_questions_stay_private_and_anonymous_everywhere(
    walk_bot: Bot, graph_world: GraphWorld
) -> None:
    bot, teams = walk_bot, walk_bot.channel.activities
    people = await _staff(bot)
    here = await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    await _command(bot, people["host"], "open event All-staff briefing", HOSTS_CHANNEL)
    await _command(bot, people["host"], "board here", HOSTS_CHANNEL)
    cleo = bot.channel.new_user("Cleo Colleague", email="cleo.colleague@council.example")
    cleo_chat = personal_conversation_id(cleo.id, APP_ID)

    def in_place(where: str, text: str) -> dict[str, Any]:
        if where == "personal":
            return teams.personal_message(cleo, text)
        if where == "channel":
            return teams.channel_mention(cleo, text, channel_id=TEAM_CHANNEL, channel_name="Payroll")
        return teams.meeting_chat_message(cleo, text, meeting_id=MEETING_ID, conversation_id=MEETING_CHAT,
                                          chat_name="All-staff briefing")

    asked: list[dict[str, Any]] = []
    for where in ("personal", "channel", "meeting"):
        asked.append(await _ask(bot, in_place(where, NAMED[where])))
        asked.append(await _ask(bot, in_place(where, f"ask anonymously {ANONYMOUS[where]}")))
        asked.append(await _ask(bot, in_place(where, f"ask privately {PRIVATE[where]}")))
    await _ask(bot, teams.personal_message(cleo, f"ask anonymously {WAITING}"))
    await _ask(bot, in_place("channel", "my questions"))  # listed in a personal chat only
    dan = bot.channel.new_user("Dan Other", email="dan.other@council.example")
    await bot.say(dan, OTHERS_QUESTION)
    forwards = await _forwards(graph_world, 11)
    rows = {row["text"]: row for row in await bot.question_rows()}
    number = {text: row["id"] for text, row in rows.items()}

    # Moderators answer: on the card in their channel, or by replying to the forward mail.
    by_subject = {mail["subject"].split("]")[0] + "]": mail for mail in forwards}
    for where in ("personal", "channel", "meeting"):
        for texts, answers in ((NAMED, NAMED_ANSWERS), (ANONYMOUS, ANONYMOUS_ANSWERS), (PRIVATE, PRIVATE_ANSWERS)):
            question_id = number[texts[where]]
            if where == "channel":  # by mail
                forward = by_subject[f"[Q-{question_id}]"]
                graph_world.graph.deliver_to_inbox(
                    "mo.one@council.example", f"RE: {forward['subject']}", sender_name="Mo One",
                    text=f"{answers[where]}\n\nKind regards,\nMo", in_reply_to=forward["internetMessageId"])
            else:
                card = await _card_for(bot, texts[where])
                await _moderate(bot, people["mod1"], here, card, op="answer", question_id=question_id,
                                answer=answers[where])

    # A public question cannot become the duplicate of a private one; a private one may join a
    # public one (its asker gets the public answer, in their 1:1 chat).
    await _moderate(bot, people["mod2"], here, await _card_for(bot, OTHERS_QUESTION), op="merge",
                    question_id=number[OTHERS_QUESTION], duplicate_of=f"Q-{number[PRIVATE['personal']]}")
    refused = await eventually(lambda: resolved([r for r in bot.channel.connector.posts()
                                                 if "can't be its duplicate" in (r.text or "")]), what="refusal")
    assert refused
    await _moderate(bot, people["mod2"], here, await _card_for(bot, OTHERS_QUESTION), op="answer",
                    question_id=number[OTHERS_QUESTION], answer="Resurfacing starts in March.")

    async def all_answered() -> bool:
        states = {row["text"]: row["status"] for row in await bot.question_rows()}
        return all(states[text] == "answered" for text in (*NAMED.values(), *ANONYMOUS.values(), *PRIVATE.values()))

    await eventually(all_answered, timeout=30, what="every question answered")
    await bot.drained()

    # The colleague got every answer, the private and anonymous ones in their 1:1 chat only.
    posts = bot.channel.connector.recorded("send", "reply", "update", ok=True)
    mine = " ".join(_shown(r) for r in posts if r.conversation_id == cleo_chat)
    for answer in (*PRIVATE_ANSWERS.values(), *ANONYMOUS_ANSWERS.values(), NAMED_ANSWERS["personal"]):
        assert answer in mine
    for where, conversation in (("channel", TEAM_CHANNEL), ("meeting", MEETING_CHAT)):
        there = [r for r in posts if r.conversation_id.startswith(conversation)]
        assert any(NAMED_ANSWERS[where] in _shown(r) for r in there)
        assert sum("replied to you in a personal chat" in (r.text or "") for r in there) == 2
    assert "Your data:" in mine  # the first reply told the new asker what is kept

    # Reminders: the waiting anonymous question, listed in the moderators' channel.
    engine = create_engine(bot.settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(questions).where(questions.c.id == number[WAITING])
                               .values(created_at=datetime.now(UTC) - timedelta(hours=30)))
    finally:
        await engine.dispose()
    assert await bot.remind_elsewhere(1, after=timedelta(hours=24), now=datetime.now(UTC)) == [1]
    await bot.drained()

    # Hosts publish in Teams, and export and report from the command line.
    await _command(bot, people["host"], "publish here", HOSTS_CHANNEL)
    digest = await eventually(lambda: resolved(next((r for r in bot.channel.connector.posts()
                                                      if "# Questions from" in (r.text or "")), None)),
                              what="the digest")
    export = await _cli("events", "export", "E-1", "--format", "jsonl", bot=bot)
    report = await _cli("events", "report", "E-1", "--format", "md", bot=bot)
    html_digest = await _cli("events", "publish", "E-1", "--format", "html", bot=bot)
    assert NAMED_ANSWERS["meeting"] in export and "questions" in report.lower()
    await bot.drained()

    # --- the scan -------------------------------------------------------------------------------
    posts = bot.channel.connector.recorded("send", "reply", "update", ok=True)
    raw_ids = [cleo.id, cleo.aad_object_id, cleo_chat, MEETING_CHAT, *(a["id"] for a in asked),
               *(a["conversation"]["id"] for a in asked)]
    who = [cleo.name, "Cleo", cleo.email, *raw_ids]
    private = [*PRIVATE.values(), *PRIVATE_ANSWERS.values()]

    # Nothing the bot posted outside Cleo's own chat carries a raw id of hers, or a private
    # question or answer except, for the moderators, in their queue.
    for request in posts:
        if request.conversation_id == cleo_chat:
            continue
        shown = _shown(request)
        _absent(raw_ids, shown, f"a message in {request.conversation_id}")
        if not request.conversation_id.startswith(MODERATORS_CHANNEL):
            _absent(private, shown, f"a message in {request.conversation_id}")
        if any(text in shown for text in (*ANONYMOUS.values(), WAITING)):  # an anonymous question's card
            _absent(who, shown, "an anonymous question's card or reminder")
    cards = [r for r in posts if r.conversation_id.startswith(MODERATORS_CHANNEL)]
    assert any("Asked in" in _shown(r) and "the channel “Payroll”" in _shown(r) for r in cards)
    assert any("a personal chat with the bot" in _shown(r) for r in cards)
    assert any("the meeting chat “All-staff briefing”" in _shown(r) for r in cards)
    assert any(WAITING in (r.text or "") for r in cards), "the reminder lists the waiting question"

    # Mails: ids never; for an anonymous question, nothing of Cleo at all (headers included).
    for mail in graph_world.graph.sent_items():
        whole = json.dumps(mail, ensure_ascii=False)
        _absent(raw_ids, whole, f"mail {mail['subject']!r}")
        if any(text[:40] in whole for text in (*ANONYMOUS.values(), WAITING)):
            _absent(who, whole, f"anonymous forward {mail['subject']!r}")

    # Published and exported: no private question or answer, no name (DIGEST_NAMES is off),
    # and in the export an anonymous row names nobody.
    for name, document in (("digest", digest.text or ""), ("html digest", html_digest), ("report", report)):
        _absent([*private, *who], document, f"the {name}")
    _absent([*private, *raw_ids], export, "the export")
    for line in export.splitlines():
        row = json.loads(line)
        if row["text"] in ANONYMOUS.values():
            _absent(who, line, "an anonymous export row")
    board = [r for r in posts if r.conversation_id.startswith(HOSTS_CHANNEL)]
    assert board and all(PRIVATE["personal"] not in _shown(r) for r in board)

    # The audit log names moderators, hosts and admins, never the colleague.
    for entry in await _rows(bot, audit_log):
        _absent(who, json.dumps(entry, default=str, ensure_ascii=False), "the audit log")


async def test_a_new_asker_by_mail_is_told_once_what_is_kept_and_how_to_ask_privately(
    mail_bot: Bot, graph_world: GraphWorld
) -> None:
    for number, text in enumerate((NAMED["personal"], NAMED["channel"]), start=1):
        graph_world.graph.deliver_to_inbox("jo.bloggs@council.example", "A question", text=text,
                                           sender_name="Jo Bloggs", message_id=f"<ask-{number}@council.example>")

    async def replies() -> list[dict[str, Any]] | None:
        sent = [m for m in graph_world.graph.sent_items() if "jo.bloggs@council.example" in str(m["toRecipients"])]
        return sent if len(sent) == 2 else None

    first, second = sorted(await eventually(replies, timeout=30, what="two replies by mail"),
                           key=lambda mail: "Q-1" not in mail["subject"])
    assert "365 days" in first["body"]["content"] and "ask privately" in first["body"]["content"]
    assert "**" not in first["body"]["content"]
    assert "365 days" not in second["body"]["content"]
