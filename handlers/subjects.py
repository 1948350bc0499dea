"""Subject rights: give a colleague everything held about them, or erase it (`cli.py subject`).

What the bot holds on a person is in the database and in the mail it keeps: the `.eml`
transport's files and, with Graph, the shared mailbox. Both are found from the database's
references (`mail_trail`), so mail is searched before the rows that lead to it are erased.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from errors import Refused
from mail.base import KeptMail, MailSearchFailed, MailTrail
from store.db import truncate_wal
from store.store import Store
from store.subjects import ERASED, Subject

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_CHARS = 320


class BadSubject(Refused):
    """The person was not named by a usable email address."""


class MailKept(Protocol):
    """A place the bot keeps mail (the `.eml` folder, the shared mailbox)."""

    async def find(self, trail: MailTrail) -> list[KeptMail]: ...

    async def delete(self, found: list[KeptMail]) -> list[KeptMail]: ...


@dataclass
class Erasure:
    """What `erase_subject` did: rows per table, mail deleted, and what it could not delete."""

    done: dict[str, int]
    mail_deleted: list[KeptMail] = field(default_factory=list)
    mail_left: list[KeptMail] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    wal_truncated: bool = True


def subject_email(value: str) -> str:
    """The address, trimmed and lower-cased (as the bot stores addresses); BadSubject if unusable."""
    email = value.strip().lower()
    if not email or len(email) > MAX_EMAIL_CHARS or not _EMAIL.match(email):
        raise BadSubject(f"{value!r} is not an email address (expected e.g. jo.bloggs@example.org)")
    if email == ERASED:
        raise BadSubject("'erased' stands for names already erased; give the person's email")
    return email


def mail_trail(subject: Subject) -> MailTrail:
    """How their mail is recognised: the bot's references, and what it wrote about them."""
    return MailTrail(
        message_ids=subject.message_ids,
        conversation_ids=subject.conversation_ids,
        question_ids=subject.question_ids,
        texts=(subject.email, *subject.names, *subject.question_texts),
    )


async def export_subject(store: Store, email: str, mail: Sequence[MailKept] = ()) -> dict[str, Any]:
    """Everything held about the person with this email (articles 15 and 20: access, portability),
    with the mail kept about them listed (not copied: it is in the files and mailbox named)."""
    async with store.unit() as unit:
        subject = await unit.subjects.find(subject_email(email))
        data = await unit.subjects.export(subject)
    trail = mail_trail(subject)
    data["mail_kept"] = [asdict(found) for kept in mail for found in await kept.find(trail)]
    return data


async def erase_subject(store: Store, email: str, mail: Sequence[MailKept] = ()) -> Erasure:
    """Erase the person's rows in one transaction (article 17), then the mail kept about them,
    then SQLite's log of the old pages; a second run finds nothing to do.

    Mail is searched before the rows go (MailSearchFailed then stops the erasure before anything
    changed) and again after (mail written meanwhile). The erasure itself is
    audited without naming anyone, so it can be shown that it happened.
    """
    email = subject_email(email)
    async with store.unit() as unit:
        trail = mail_trail(await unit.subjects.find(email))
    before = [await kept.find(trail) for kept in mail]
    async with store.unit() as unit:
        subject = await unit.subjects.find(email)
        done = await unit.subjects.erase(subject)
        if any(done.values()):
            summary = ", ".join(f"{what} {count}" for what, count in done.items() if count)
            await unit.audit.record("cli", "subject.erase", ERASED, summary)
    erasure = Erasure(done)
    trail = _joined(trail, mail_trail(subject))
    for kept, found in zip(mail, before, strict=True):
        try:
            found = list(dict.fromkeys([*found, *await kept.find(trail)]))
        except MailSearchFailed as error:  # the rows are gone: delete what was found before
            erasure.problems.append(str(error))
        left = await kept.delete(found)
        erasure.mail_left += left
        erasure.mail_deleted += [item for item in found if item not in left]
    erasure.wal_truncated = await truncate_wal(store.engine)
    return erasure


def _joined(first: MailTrail, second: MailTrail) -> MailTrail:
    return MailTrail(
        **{name: tuple(dict.fromkeys((*getattr(first, name), *getattr(second, name)))) for name in asdict(first)}
    )
