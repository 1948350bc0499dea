"""Subject rights through the CLI: export everything about a person, then erase it, once."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from domain.jobs import ChatReply, ForwardMail, MailReply
from domain.replies import Forwarded, Welcome
from handlers.queue import MODERATORS_CHANNEL
from store.schema import audit_log, outbox, questions
from store.store import Store
from tests.privacy.seed import ask, channel_address, counts, dump

ROOT = Path(__file__).resolve().parents[2]
JO_EMAIL = "jo.bloggs@council.example"
JO_AAD = "5b0c8a1e-1111-4000-8000-00000000a0j0"
JO_TEAMS = "29:1jo-teams-user-id"
JO_NAME = "Jo Bloggs"
JO = (JO_EMAIL, JO_AAD, JO_TEAMS, JO_NAME)
QUEUE = channel_address("19:moderators@thread.tacv2")
BOARD = channel_address("19:hosts@thread.tacv2")


async def _seed(store: Store) -> dict[str, int]:
    """Jo asks (once anonymously, once by mail), supports Sam's question, and as a moderator
    claims and answers another of Sam's and adds it to the FAQ; Mo adds Jo's mailed question.
    An admin granted Jo the moderator role. Jo set up the moderators' channel and the board of
    the event Jo opened, Hana another event's board (kept without who typed the command)."""
    jo_anon = await ask(store, "Are there redundancies coming in my team?", key="teams:a:jo1",
                        asker_id=JO_TEAMS, aad_id=JO_AAD, name=JO_NAME, anonymous=True)
    jo_mail = await ask(store, "Can I buy extra leave?", key="mail:<jo@mail>", asker_id=JO_EMAIL,
                        name=JO_NAME, email=JO_EMAIL, source="mail")
    sam_public = await ask(store, "Will the canteen reopen?", key="teams:a:sam1", asker_id="29:sam",
                           aad_id="aad-sam", name="Sam Other")
    sam_claimed = await ask(store, "Is parking free at weekends?", key="teams:a:sam2", asker_id="29:sam",
                            aad_id="aad-sam", name="Sam Other")
    async with store.unit() as unit:
        await unit.people.remember(JO_AAD, email=JO_EMAIL.upper(), name=JO_NAME)
        await unit.people.remember("aad-sam", email="sam@council.example", name="Sam Other")
        await unit.roles.grant(JO_EMAIL, "moderator", by="Ada Admin")
        await unit.audit.record("Ada Admin", "role.grant", JO_EMAIL, "moderator")
        await unit.answers.add(jo_anon, text="No redundancies are planned.", author="mo@council.example",
                               author_name="Mo Moderator", via="mail", source_key="mail:<mo-1@x>")
        await unit.questions.add_feedback(jo_mail, "leave-buy", helpful=False)
        await unit.support.add(sam_public, JO_AAD)
        await unit.support.add(sam_public, "aad-sam-friend")
        await unit.questions.set_fields(sam_claimed, claimed_by=JO_NAME)
        await unit.answers.add(sam_claimed, text="Yes, from Friday 6pm.", author=JO_AAD, author_name=JO_NAME,
                               via="teams", source_key="teams:card-1")
        await unit.audit.record(JO_NAME, "question.claim", f"Q-{sam_claimed}")
        await unit.audit.record(JO_NAME, "question.answer", f"Q-{sam_claimed}", "Yes, from Friday 6pm.")
        await unit.audit.record("Mo Moderator", "question.dismiss", f"Q-{sam_public}", "duplicate")
        await unit.audit.record("asker", "answer.feedback", f"Q-{jo_anon}", '{"answer_id": 1, "helpful": true}')
        await unit.inbound_mail.record("<jo@mail>", sender=JO_EMAIL, outcome="question", detail=None,
                                       question_id=jo_mail, received_at=datetime.now(UTC))
        forwarded = Forwarded(ref=f"Q-{jo_mail}")
        await unit.outbox.enqueue(MailReply(jo_mail, forwarded, key="k"), dedupe_key=f"reply:{jo_mail}")
        address = {"user": {"id": JO_TEAMS, "aad_object_id": JO_AAD}, "conversation": {"id": "a:jo"}}
        await unit.outbox.enqueue(ChatReply(address, Welcome()), dedupe_key="welcome:a:jo")
        await unit.outbox.enqueue(ForwardMail(sam_public), dedupe_key=f"forward:{sam_public}")
        briefing, _ = await unit.events.open("All-staff briefing", description=None, ends_at=None, by=JO_NAME)
        town_hall, _ = await unit.events.open("Town hall", description=None, ends_at=None, by="Hana Host")
        await unit.faq.add_entry("weekend-parking", question="Is parking free at weekends?",
                                 answer="Yes, from Friday 6pm.", question_id=sam_claimed, created_by=JO_NAME)
        await unit.faq.add_entry("buying-leave", question="Can I buy extra leave?", answer="Up to 5 days a year.",
                                 question_id=jo_mail, created_by="Mo Moderator")
        await unit.faq.link(jo_mail, "buying-leave", text="Can I buy extra leave?", linked_by="Mo Moderator")
        await unit.faq.link(sam_public, "canteen", text="Will the canteen reopen?", linked_by=JO_NAME)
        await unit.state.put(MODERATORS_CHANNEL, json.dumps(QUEUE))
        await unit.events.set_board(briefing, BOARD, "board-1")
        await unit.events.set_board(town_hall, BOARD, "board-2")
    return {"jo_anon": jo_anon, "jo_mail": jo_mail, "sam_public": sam_public, "sam_claimed": sam_claimed,
            "briefing": briefing, "town_hall": town_hall}


async def _cli(*args: str, database_url: str, stdin: bytes = b"") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "cli.py", *args, cwd=ROOT, env={**os.environ, "DATABASE_URL": database_url},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_export_shows_everything_held_about_the_person(store: Store, database_url: str) -> None:
    ids = await _seed(store)
    code, out, err = await _cli("subject", "export", "--user", "  Jo.Bloggs@Council.Example ",
                                database_url=database_url)
    assert code == 0, err
    held = json.loads(out)
    assert held["subject"] == {"email": JO_EMAIL, "entra_object_ids": [JO_AAD],
                               "teams_user_ids": [JO_TEAMS], "names": [JO_NAME]}
    asked = {q["id"]: q for q in held["questions_asked"]}
    assert set(asked) == {ids["jo_anon"], ids["jo_mail"]}
    assert asked[ids["jo_anon"]]["anonymous"] is True  # the bot knows who asked anonymously
    assert [a["text"] for a in held["answers_received"]] == ["No redundancies are planned."]
    assert [f["helpful"] for f in held["faq_feedback"]] == [False]
    assert [s["question_id"] for s in held["support_given"]] == [ids["sam_public"]]
    assert [a["text"] for a in held["answers_written"]] == ["Yes, from Friday 6pm."]
    assert held["questions_moderated"][0]["claimed_by"] == JO_NAME
    assert [p["aad_id"] for p in held["people"]] == [JO_AAD]
    assert [(r["principal"], r["role"]) for r in held["roles"]] == [(JO_EMAIL, "moderator")]
    assert {(a["actor"], a["action"]) for a in held["audit_log"]} == {
        ("Ada Admin", "role.grant"), (JO_NAME, "question.claim"), (JO_NAME, "question.answer"),
        ("asker", "answer.feedback"),  # Jo's verdict on the answer to Jo's question
    }
    assert [e["title"] for e in held["events_opened"]] == ["All-staff briefing"]
    assert [(e["id"], e["created_by"]) for e in held["faq_entries_added"]] == [("weekend-parking", JO_NAME)]
    assert [e["question"] for e in held["faq_entries_from_questions_asked"]] == ["Can I buy extra leave?"]
    assert [p["text"] for p in held["faq_phrasings_from_questions_asked"]] == ["Can I buy extra leave?"]
    assert [p["question_id"] for p in held["faq_phrasings_linked"]] == [ids["sam_public"]]
    assert [m["internet_message_id"] for m in held["inbound_mail"]] == ["<jo@mail>"]
    assert sorted(job["kind"] for job in held["outbox"]) == ["mail.reply", "teams.send"]  # not Sam's forward


async def test_erase_removes_the_person_keeps_others_and_a_second_run_changes_nothing(
    store: Store, database_url: str
) -> None:
    ids = await _seed(store)
    before = await counts(store)

    code, out, err = await _cli("subject", "erase", "--user", JO_EMAIL, "--yes", database_url=database_url)
    assert code == 0, err
    assert out.splitlines()[0] == f"erased {JO_EMAIL}:"
    assert "  questions_deleted: 2" in out and "  audit_log_anonymised: 3" in out
    assert "  faq_entries_anonymised: 1" in out
    assert "  faq_phrasings_deleted: 1" in out and "  faq_phrasings_anonymised: 1" in out

    everything = await dump(store)
    for identifier in JO:
        assert identifier.lower() not in everything.lower(), identifier
    after = await counts(store)
    assert before["questions"] - after["questions"] == 2
    async with store.unit() as unit:
        sam_public = await unit.questions.get(ids["sam_public"])
        sam_claimed = await unit.questions.get(ids["sam_claimed"])
        assert sam_public is not None and sam_public.support == 1  # the friend's support stays
        assert sam_claimed is not None and sam_claimed.claimed_by == "erased"
        [answer] = await unit.answers.for_question(sam_claimed.id)
        assert (answer.text, answer.author, answer.author_name) == ("Yes, from Friday 6pm.", "erased", None)
        assert await unit.inbound_mail.seen("<jo@mail>")  # still recognised if read again
        assert await unit.roles.roles_of([JO_EMAIL, JO_AAD]) == set()
        faq = {entry.id: entry for entry in await unit.faq.entries()}  # organisational: they stay
        assert (faq["weekend-parking"].created_by, faq["weekend-parking"].answer) == ("erased", "Yes, from Friday 6pm.")
        assert (faq["buying-leave"].created_by, faq["buying-leave"].question_id) == ("Mo Moderator", None)
        # the channels Jo set up still get their cards: their addresses never named Jo
        assert json.loads(await unit.state.get(MODERATORS_CHANNEL) or "{}") == QUEUE
        briefing = await unit.events.get(ids["briefing"])
        assert briefing is not None and (briefing.board_address, briefing.board_card_id) == (BOARD, "board-1")
    async with store.engine.connect() as conn:
        kinds = (await conn.execute(select(outbox.c.kind))).scalars().all()
        assert kinds == ["mail.forward"]
        assert (await conn.execute(select(questions.c.id).order_by(questions.c.id))).scalars().all() == [
            ids["sam_public"], ids["sam_claimed"]
        ]

    code, out, err = await _cli("subject", "export", "--user", JO_EMAIL, database_url=database_url)
    held = json.loads(out)
    assert all(held[key] == [] for key in held if key != "subject")
    claimed = f"Q-{ids['sam_claimed']}"
    assert {(a["actor"], a["action"], a["target"]) for a in await _audit(store)} == {
        ("Ada Admin", "role.grant", "erased"),  # the action stays; the person is no longer named
        ("erased", "question.claim", claimed),
        ("erased", "question.answer", claimed),
        ("Mo Moderator", "question.dismiss", f"Q-{ids['sam_public']}"),
        ("asker", "answer.feedback", f"Q-{ids['jo_anon']}"),  # names a question that is gone
        ("cli", "subject.erase", "erased"),  # that an erasure happened, naming nobody
    }

    snapshot = await dump(store)
    code, out, err = await _cli("subject", "erase", "--user", JO_EMAIL, "--yes", database_url=database_url)
    assert code == 0, err
    assert out.splitlines()[0] == f"nothing held about {JO_EMAIL}; nothing changed:"
    assert await dump(store) == snapshot


async def _audit(store: Store) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        return [dict(row._mapping) for row in await conn.execute(select(audit_log))]


async def test_erase_asks_first_and_changes_nothing_when_not_confirmed(store: Store, database_url: str) -> None:
    await _seed(store)
    snapshot = await dump(store)
    code, out, _ = await _cli("subject", "erase", "--user", JO_EMAIL, database_url=database_url, stdin=b"n\n")
    assert code == 1
    assert f"Erase everything held about {JO_EMAIL}?" in out
    assert await dump(store) == snapshot


async def test_bad_arguments_get_a_clear_error_and_exit_code_2(database_url: str) -> None:
    for args, problem in [
        (("subject", "export"), "Missing option '--user'"),
        (("subject", "export", "--user", "jo bloggs"), "'jo bloggs' is not an email address"),
        (("subject", "erase", "--user", "", "--yes"), "'' is not an email address"),
        (("subject", "erase", "--user", "erased@", "--yes"), "is not an email address"),
        (("subject", "forget", "--user", JO_EMAIL), "No such command 'forget'"),
    ]:
        code, out, err = await _cli(*args, database_url=database_url)
        assert code == 2, (args, out, err)
        assert problem in err, (args, err)
        assert out == ""
