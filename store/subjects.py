"""Subject rights (UK GDPR articles 15 and 17): find, export and erase what is held on one person.

A person is found by their email address and by every Entra object id linked to it: the
people table (filled from the Teams roster) and questions whose roster look-up gave that
email. Teams user ids and display names are then taken from their own questions and people
rows, because the audit log and the moderation fields name people by display name.
Anonymous questions are included: the bot records who asked them even though nobody is shown.

Channel addresses (the moderators' queue, each event's live board) name nobody: a channel keeps
them without whoever set them up (Channel.for_keeping), and migration 0010 rewrote older ones so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from store.retention import unlink_questions
from store.schema import (
    answers,
    audit_log,
    events,
    faq_entries,
    faq_feedback,
    faq_phrasings,
    inbound_mail,
    outbox,
    people,
    question_support,
    questions,
    roles,
)

#: What erased names and identities are replaced with.
ERASED = "erased"


@dataclass(frozen=True)
class Subject:
    """Every identifier the bot holds for one person."""

    email: str
    aad_ids: tuple[str, ...]
    user_ids: tuple[str, ...]  # Teams user ids (29:...) their questions came from
    names: tuple[str, ...]
    question_ids: tuple[int, ...]
    question_texts: tuple[str, ...] = ()
    #: Mail the bot keeps about them: forwards of their questions and the mails they sent
    #: (Message-IDs), and the mailbox conversations their mailed questions are in.
    message_ids: tuple[str, ...] = ()
    conversation_ids: tuple[str, ...] = ()

    @property
    def principals(self) -> tuple[str, ...]:
        """How roles and role audit entries name them: email or Entra object id."""
        return (self.email, *(aad_id.lower() for aad_id in self.aad_ids))

    @property
    def actors(self) -> tuple[str, ...]:
        """How audit entries and moderation fields name them (a label: name, email or id)."""
        return (*self.names, self.email, *self.aad_ids, *self.user_ids)

    @property
    def question_refs(self) -> tuple[str, ...]:
        """How audit entries name their questions (`Q-42`)."""
        return tuple(f"Q-{question_id}" for question_id in self.question_ids)

    @property
    def supporters(self) -> tuple[str, ...]:
        return (*self.aad_ids, *self.user_ids)


class SubjectRepo:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def find(self, email: str) -> Subject:
        """Collect the person's identifiers; `email` must already be lower-case."""
        aad_ids = set(
            (await self._conn.execute(select(people.c.aad_id).where(func.lower(people.c.email) == email))).scalars()
        )
        asked_with_email = await self._conn.execute(
            select(questions.c.asker_aad_id).where(
                func.lower(questions.c.asker_email) == email, questions.c.asker_aad_id.is_not(None)
            )
        )
        aad_ids.update(asked_with_email.scalars())
        mine = or_(
            func.lower(questions.c.asker_email) == email,
            questions.c.asker_id == email,
            questions.c.asker_aad_id.in_(sorted(aad_ids)),
        )
        rows = (
            await self._conn.execute(
                select(
                    questions.c.id,
                    questions.c.source,
                    questions.c.asker_id,
                    questions.c.asker_name,
                    questions.c.text,
                    questions.c.forward_message_id,
                    questions.c.reply_to_id,
                    questions.c.conversation_id,
                )
                .where(mine)
                .order_by(questions.c.id)
            )
        ).all()
        mailed = [row for row in rows if row.source == "mail"]
        mails_sent = await self._conn.execute(
            select(inbound_mail.c.internet_message_id).where(func.lower(inbound_mail.c.sender) == email)
        )
        message_ids = {row.forward_message_id for row in rows if row.forward_message_id}
        message_ids.update(row.reply_to_id for row in mailed if row.reply_to_id)
        message_ids.update(mails_sent.scalars())
        names = {row.asker_name for row in rows if row.asker_name}
        if aad_ids:
            names.update(
                (await self._conn.execute(select(people.c.name).where(people.c.aad_id.in_(sorted(aad_ids))))).scalars()
            )
        return Subject(
            email=email,
            aad_ids=tuple(sorted(aad_ids)),
            user_ids=tuple(sorted({row.asker_id for row in rows if row.source == "teams"})),
            names=tuple(sorted(name for name in names if name)),
            question_ids=tuple(row.id for row in rows),
            question_texts=tuple(row.text for row in rows),
            message_ids=tuple(sorted(message_ids)),
            conversation_ids=tuple(sorted({row.conversation_id for row in mailed if row.conversation_id})),
        )

    async def export(self, subject: Subject) -> dict[str, Any]:
        """Everything held about the person, as JSON-ready data."""
        ids = list(subject.question_ids)
        asked = await self._rows(questions, questions.c.id.in_(ids))
        for row in asked:
            row["address"] = json.loads(row["address"]) if row["address"] else None
        moderated = await self._conn.execute(
            select(questions.c.id, questions.c.status, questions.c.claimed_by, questions.c.acted_by)
            .where(_moderated_by(subject))
            .order_by(questions.c.id)
        )
        return {
            "subject": {
                "email": subject.email,
                "entra_object_ids": list(subject.aad_ids),
                "teams_user_ids": list(subject.user_ids),
                "names": list(subject.names),
            },
            "people": await self._rows(people, people.c.aad_id.in_(subject.aad_ids)),
            "roles": await self._rows(roles, roles.c.principal.in_(subject.principals)),
            "questions_asked": asked,
            "answers_received": await self._rows(answers, answers.c.question_id.in_(ids)),
            "faq_feedback": await self._rows(faq_feedback, faq_feedback.c.question_id.in_(ids)),
            "faq_phrasings_from_questions_asked": await self._rows(
                faq_phrasings, faq_phrasings.c.question_id.in_(ids)),
            "faq_phrasings_linked": await self._rows(faq_phrasings, faq_phrasings.c.linked_by.in_(subject.actors)),
            "support_given": await self._rows(question_support, question_support.c.supporter.in_(subject.supporters)),
            "answers_written": await self._rows(answers, answers.c.author.in_(subject.actors)),
            "questions_moderated": [dict(row._mapping) for row in moderated],
            "events_opened": await self._rows(events, events.c.opened_by.in_(subject.actors)),
            "faq_entries_added": await self._rows(faq_entries, faq_entries.c.created_by.in_(subject.actors)),
            "faq_entries_from_questions_asked": await self._rows(faq_entries, faq_entries.c.question_id.in_(ids)),
            "inbound_mail": await self._rows(inbound_mail, func.lower(inbound_mail.c.sender) == subject.email),
            "outbox": [
                {**row, "payload": json.loads(row["payload"])}
                for row in await self._rows(outbox, outbox.c.id.in_(await self._outbox_ids(subject)))
            ],
            "audit_log": await self._rows(
                audit_log, or_(_audit_naming(subject), audit_log.c.target.in_(subject.question_refs))
            ),
        }

    async def erase(self, subject: Subject) -> dict[str, int]:
        """Delete what is theirs, replace their name where others' records mention them.

        Their questions go (with answers, feedback and support); where a record belongs to
        someone else (an answer they wrote, an audit entry, an event they opened, an FAQ entry
        they added) the record stays and their name becomes "erased". The mail log keeps each Message-ID, so a
        mail read again after a mailbox resync is still recognised and not recorded a second time.
        """
        ids = list(subject.question_ids)
        done: dict[str, int] = {}

        async def run(what: str, statement: Any) -> None:
            done[what] = (await self._conn.execute(statement)).rowcount

        outbox_ids = await self._outbox_ids(subject)
        given = (
            await self._conn.execute(
                select(question_support.c.question_id).where(question_support.c.supporter.in_(subject.supporters))
            )
        ).scalars().all()
        done["questions_deleted"] = len(ids)
        await run("answers_received_deleted", delete(answers).where(answers.c.question_id.in_(ids)))
        await run("faq_feedback_deleted", delete(faq_feedback).where(faq_feedback.c.question_id.in_(ids)))
        await run("faq_phrasings_deleted", delete(faq_phrasings).where(faq_phrasings.c.question_id.in_(ids)))
        await self._conn.execute(delete(question_support).where(question_support.c.question_id.in_(ids)))
        await run("support_given_deleted",
                  delete(question_support).where(question_support.c.supporter.in_(subject.supporters)))
        for question_id in given:
            await self._conn.execute(
                update(questions)
                .where(questions.c.id == question_id, questions.c.support > 0)
                .values(support=questions.c.support - 1)
            )
        await run(
            "inbound_mail_anonymised",
            update(inbound_mail)
            .where(func.lower(inbound_mail.c.sender) == subject.email)
            .values(sender=ERASED, detail=None, question_id=None),
        )
        await unlink_questions(self._conn, ids)
        await self._conn.execute(delete(questions).where(questions.c.id.in_(ids)))
        await run("outbox_deleted", delete(outbox).where(outbox.c.id.in_(outbox_ids)))
        await run(
            "answers_written_anonymised",
            update(answers).where(answers.c.author.in_(subject.actors)).values(author=ERASED, author_name=None),
        )
        await run(
            "questions_moderated_anonymised",
            update(questions).where(_moderated_by(subject)).values(
                claimed_by=_erased_if_theirs(questions.c.claimed_by, subject),
                acted_by=_erased_if_theirs(questions.c.acted_by, subject),
            ),
        )
        await run(
            "faq_entries_anonymised",
            update(faq_entries).where(faq_entries.c.created_by.in_(subject.actors)).values(created_by=ERASED),
        )
        await run(
            "faq_phrasings_anonymised",
            update(faq_phrasings).where(faq_phrasings.c.linked_by.in_(subject.actors)).values(linked_by=ERASED),
        )
        await run(
            "events_anonymised",
            update(events).where(events.c.opened_by.in_(subject.actors)).values(opened_by=ERASED),
        )
        await run("roles_deleted", delete(roles).where(roles.c.principal.in_(subject.principals)))
        await run(
            "roles_granted_anonymised",
            update(roles).where(roles.c.granted_by.in_(subject.actors)).values(granted_by=ERASED),
        )
        await run("people_deleted", delete(people).where(people.c.aad_id.in_(subject.aad_ids)))
        await run(
            "audit_log_anonymised",
            update(audit_log).where(_audit_naming(subject)).values(
                actor=_erased_if_theirs(audit_log.c.actor, subject),
                target=_erased_if_theirs(audit_log.c.target, subject),
            ),
        )
        return done

    async def _outbox_ids(self, subject: Subject) -> list[int]:
        """Jobs whose payload is about the person: one of their questions, or their address.

        A LIKE narrows the scan; the payload is then checked exactly (question 1 is not 12).
        """
        patterns = [f'%"question_id": {question_id}%' for question_id in subject.question_ids]
        patterns += [f"%{value.lower()}%" for value in (subject.email, *subject.aad_ids, *subject.user_ids)]
        if not patterns:
            return []
        found: list[int] = []
        wanted = {value.lower() for value in (subject.email, *subject.aad_ids, *subject.user_ids)}
        for chunk in _chunks(patterns, 200):
            rows = await self._conn.execute(
                select(outbox.c.id, outbox.c.payload).where(
                    or_(*(func.lower(outbox.c.payload).like(pattern) for pattern in chunk))
                )
            )
            for row in rows:
                if row.id not in found and _concerns(json.loads(row.payload), set(subject.question_ids), wanted):
                    found.append(row.id)
        return sorted(found)

    async def _rows(self, table: Table, condition: Any) -> list[dict[str, Any]]:
        first_key = next(iter(table.primary_key.columns))
        rows = await self._conn.execute(select(table).where(condition).order_by(first_key))
        return [{key: _plain(value) for key, value in row._mapping.items()} for row in rows]


def _moderated_by(subject: Subject) -> Any:
    return or_(questions.c.claimed_by.in_(subject.actors), questions.c.acted_by.in_(subject.actors))


def _audit_naming(subject: Subject) -> Any:
    return or_(audit_log.c.actor.in_(subject.actors), audit_log.c.target.in_(subject.principals))


def _erased_if_theirs(column: Any, subject: Subject) -> Any:
    return case((column.in_(subject.actors), ERASED), else_=column)


def _concerns(payload: Any, question_ids: set[int], identifiers: set[str]) -> bool:
    """True if a JSON payload names one of the questions or carries one of the identifiers."""
    if isinstance(payload, dict):
        if payload.get("question_id") in question_ids:
            return True
        return any(_concerns(value, question_ids, identifiers) for value in payload.values())
    if isinstance(payload, list):
        return any(_concerns(value, question_ids, identifiers) for value in payload)
    return isinstance(payload, str) and payload.lower() in identifiers


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
