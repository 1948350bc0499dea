"""Hostile mail: whatever arrives in the shared mailbox is classified without an error, acted on
at most once, and leaves no half-written rows; what is kept of it is plain text."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from config.settings import BUNDLED_FAQ
from domain.states import QuestionStatus
from faq.matcher import Matcher, matcher_for_file
from handlers.deps import Deps, Limits
from handlers.inbox import MailPolicy, handle_inbound
from mail.base import InboundMail
from mail.eml import EmlOutbox
from mail.inbound import inbound_from_eml, is_automatic, question_ref, references_of, reply_text
from store.store import Store
from tests.hostile.support import question_states, row_counts
from tests.privacy.seed import ask

MAILBOX = "staff-questions@council.example"
FORWARD_ID = "<forward-1@bot.council.example>"
LIVE_MARKUP = re.compile(r"<\s*(script|iframe|img|svg|object|style|a)[\s>/]", re.IGNORECASE)

SENDERS = st.sampled_from(
    [
        "moderator.one@council.example", "jo.bloggs@council.example", "someone@elsewhere.example",
        MAILBOX, "mailer-daemon@council.example", "", "not-an-address", "JO.BLOGGS@COUNCIL.EXAMPLE",
    ]
) | st.emails().map(str)
SUBJECTS = st.sampled_from(
    ["[Q-1] car park", "RE: [Q-1] car park", "Re: [q-999999999]", "[Q-0]", "Automatic reply: away", "Read: x", ""]
) | st.text(max_size=80)
MARKUP = st.sampled_from(
    [
        "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;", "<img src=x onerror=alert(1)>",
        "<a href='javascript:alert(1)'>click</a>", "<style>*{}</style>", "<svg/onload=alert(1)>",
        "&amp;lt;iframe src=//evil&amp;gt;", "> quoted\n> history", "On Mon, Jo wrote:\n> old", "--\nSignature",
    ]
)
BODIES = st.lists(MARKUP | st.text(max_size=120), max_size=5).map("\n".join)
HEADERS = st.dictionaries(
    st.sampled_from(["auto-submitted", "precedence", "x-auto-response-suppress", "list-id", "return-path",
                     "content-type", "x-bot-key", "x-autoreply"]) | st.text(max_size=20),
    st.text(max_size=40),
    max_size=3,
)
#: Exchange's verdict on mail sent inside the organisation (see mail.inbound.untrusted_because).
INTERNAL = {"x-ms-exchange-organization-authas": "Internal",
            "x-ms-exchange-organization-authsource": "AM9PR07MB7105.eurprd07.prod.outlook.com"}
MAIL_NUMBERS = itertools.count(1)
MESSAGE_IDS = st.sampled_from([FORWARD_ID, "<unknown@x>", "", "no-brackets", "<a> <b>"]) | st.text(max_size=40)


@st.composite
def mails(draw: st.DrawFn) -> InboundMail:
    return InboundMail(
        internet_message_id="<set-per-example@hostile.example>",
        sender=draw(SENDERS).lower(),
        sender_name=draw(st.text(max_size=60)),
        subject=draw(SUBJECTS),
        text=draw(BODIES),
        received_at=datetime.now(UTC),
        in_reply_to=draw(st.none() | MESSAGE_IDS),
        references=tuple(draw(st.lists(MESSAGE_IDS, max_size=3))),
        headers={**draw(st.sampled_from([{}, INTERNAL])), **draw(HEADERS)},
    )


@st.composite
def moderator_replies(draw: st.DrawFn) -> InboundMail:
    """A moderator answering the forwarded question, with anything at all in the body."""
    return replace(draw(mails()), sender="moderator.one@council.example", subject="RE: [Q-1] car park",
                   in_reply_to=FORWARD_ID, headers=dict(INTERNAL))


@st.composite
def staff_questions(draw: st.DrawFn) -> InboundMail:
    """A colleague writing in with a new question, with anything at all in subject and body."""
    return replace(draw(mails()), sender="jo.bloggs@council.example", in_reply_to=None, references=(),
                   subject=draw(st.text(max_size=80)), headers=dict(INTERNAL))


ANY_MAIL = mails() | moderator_replies() | staff_questions()


@pytest.fixture(scope="session")
def matcher() -> Matcher:
    return matcher_for_file(BUNDLED_FAQ, threshold=None, min_precision=0.97)


@pytest.fixture
async def deps(store: Store, matcher: Matcher, tmp_path: Path) -> AsyncIterator[Deps]:
    """The real services mail handling uses, and one question already forwarded to moderators."""
    question_id = await ask(store, "Will the Shire Hall car park reopen?", key="teams:a:1", asker_id="29:asker",
                            aad_id="aad-asker", name="Ann Asker")
    async with store.unit() as unit:
        await unit.questions.move(question_id, to=QuestionStatus.FORWARDED, only_from=[QuestionStatus.RECEIVED])
        await unit.questions.set_forward_message_id(question_id, FORWARD_ID)
    yield Deps(
        store=store, faq=matcher, mail=EmlOutbox(tmp_path / "outbox", MAILBOX),
        limits=Limits(max_question_chars=2000, moderators_address=MAILBOX), log=logging.getLogger("hostile"),
        clock=store.clock,
    )


POLICY = MailPolicy(mailbox=MAILBOX, moderators=("moderator.one@council.example",),
                    staff_domains=("council.example",), max_age_days=365)


@given(mail=ANY_MAIL)
@example(  # found by this test: a NUL made PostgreSQL refuse the row, and the mail failed on every read
    mail=InboundMail(internet_message_id="<x@y>", sender="jo.bloggs@council.example", sender_name="\x00",
                     subject="Parking\x00?", text="Is the car park\x00 open?", received_at=datetime.now(UTC),
                     headers=INTERNAL)
)
async def test_any_mail_is_acted_on_once_and_leaves_no_half_written_rows(deps: Deps, mail: InboundMail) -> None:
    mail = replace(mail, internet_message_id=f"<{next(MAIL_NUMBERS)}@hostile.example>")  # each one is new
    before, states = await row_counts(deps.store), await question_states(deps.store)
    outcome = await handle_inbound(deps, POLICY, mail)
    after = await row_counts(deps.store)
    changed = {table: after[table] - before[table] for table in after if after[table] != before[table]}
    assert outcome in {"question", "answer", "ignored", "untrusted"}
    event(f"outcome: {outcome}")  # see --hypothesis-show-statistics: every kind should occur
    if outcome in ("ignored", "untrusted"):
        assert changed == {"inbound_mail": 1}
        assert await question_states(deps.store) == states
    elif outcome == "question":
        assert changed == {"inbound_mail": 1, "questions": 1, "outbox": 1}  # with its triage job
        newest = max(row[0] for row in await question_states(deps.store))
        async with deps.store.unit() as unit:
            recorded = await unit.questions.get(newest)
        assert recorded is not None and recorded.text.strip() and not LIVE_MARKUP.search(recorded.text)
    else:
        assert changed.keys() >= {"inbound_mail", "answers", "outbox"} and changed["answers"] == 1

    again = await row_counts(deps.store)
    assert await handle_inbound(deps, POLICY, mail) == "duplicate"  # read twice: nothing new
    assert await row_counts(deps.store) == again


@given(mail=ANY_MAIL)
def test_classifying_a_mail_never_fails_and_keeps_no_markup(mail: InboundMail) -> None:
    reason = is_automatic(mail)
    assert reason is None or (isinstance(reason, str) and reason)
    number = question_ref(mail.subject)
    assert number is None or 0 <= number < 10**9
    assert all(ref.startswith("<") for ref in references_of(mail))
    assert not LIVE_MARKUP.search(reply_text(mail))


@given(data=st.binary(max_size=3000) | BODIES.map(lambda body: ("Subject: x\r\nFrom: a@b.c\r\n\r\n" + body).encode()))
def test_any_eml_file_reads_as_a_mail(data: bytes) -> None:
    mail = inbound_from_eml(data, datetime.now(UTC))
    assert mail.internet_message_id.startswith("<")
    assert mail.sender == mail.sender.lower()
    # the same file is the same mail
    assert inbound_from_eml(data, datetime.now(UTC)).internet_message_id == mail.internet_message_id


async def test_a_mail_older_than_the_retention_period_is_not_a_new_question(deps: Deps) -> None:
    """A mailbox resync lists old mail again, whose record the purge may have removed."""
    old = InboundMail(
        internet_message_id="<from-last-year@council.example>",
        sender="jo.bloggs@council.example",
        sender_name="Jo Bloggs",
        subject="Parking",
        text="Is the car park open at weekends?",
        received_at=datetime.now(UTC) - timedelta(days=400),
    )
    before = await row_counts(deps.store)
    assert await handle_inbound(deps, POLICY, old) == "ignored"
    after = await row_counts(deps.store)
    assert {table: after[table] - before[table] for table in after if after[table] != before[table]} == {
        "inbound_mail": 1
    }
    assert await handle_inbound(deps, POLICY, replace(old, received_at=datetime.now(UTC))) == "duplicate"
