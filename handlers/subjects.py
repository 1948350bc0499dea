"""Subject rights: give a colleague everything held about them, or erase it (`cli.py subject`)."""

from __future__ import annotations

import re
from typing import Any

from store.store import Store
from store.subjects import ERASED

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_CHARS = 320


class BadSubject(ValueError):
    """The person was not named by a usable email address."""


def subject_email(value: str) -> str:
    """The address, trimmed and lower-cased (as the bot stores addresses); BadSubject if unusable."""
    email = value.strip().lower()
    if not email or len(email) > MAX_EMAIL_CHARS or not _EMAIL.match(email):
        raise BadSubject(f"{value!r} is not an email address (expected e.g. jo.bloggs@example.org)")
    if email == ERASED:
        raise BadSubject("'erased' stands for names already erased; give the person's email")
    return email


async def export_subject(store: Store, email: str) -> dict[str, Any]:
    """Everything held about the person with this email (articles 15 and 20: access, portability)."""
    async with store.unit() as unit:
        subject = await unit.subjects.find(subject_email(email))
        return await unit.subjects.export(subject)


async def erase_subject(store: Store, email: str) -> dict[str, int]:
    """Erase the person in one transaction (article 17); a second run finds nothing to do.

    The erasure itself is audited without naming anyone, so it can be shown that it happened.
    """
    async with store.unit() as unit:
        subject = await unit.subjects.find(subject_email(email))
        done = await unit.subjects.erase(subject)
        if any(done.values()):
            summary = ", ".join(f"{what} {count}" for what, count in done.items() if count)
            await unit.audit.record("cli", "subject.erase", ERASED, summary)
    return done
