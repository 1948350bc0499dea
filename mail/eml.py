"""The embedded mail transport: one RFC 5322 `.eml` file per mail in a folder.

With no Graph settings the bot still forwards every question somewhere a person (or
`cli.py mail receive`) can read it. Files are named by the mail's key and written atomically,
so a retried send finds the file and sends nothing twice.
"""

from __future__ import annotations

import asyncio
import os
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid
from datetime import datetime
from pathlib import Path

from mail.base import OutgoingMail, SentMail
from store.schema import utcnow

KEY_HEADER = "X-Bot-Key"


class EmlOutbox:
    def __init__(self, directory: Path, sender: str) -> None:
        self._directory = directory
        self._sender = sender

    async def send(self, mail: OutgoingMail) -> SentMail:
        return await asyncio.to_thread(self._write, mail)

    async def expire(self, before: datetime, *, dry_run: bool = False) -> int:
        """Delete (with `dry_run`, count) the mail files written before `before`. They hold
        questions and names, so they are kept no longer than the database keeps its rows."""
        return await asyncio.to_thread(self._expire, before.timestamp(), dry_run)

    def path_for(self, key: str) -> Path:
        return self._directory / (re.sub(r"[^A-Za-z0-9_.-]+", "-", key) + ".eml")

    def _expire(self, before: float, dry_run: bool) -> int:
        if not self._directory.is_dir():
            return 0
        expired = [
            path for path in self._directory.iterdir()
            if path.name.endswith((".eml", ".eml.partial")) and path.stat().st_mtime < before
        ]
        if not dry_run:
            for path in expired:
                path.unlink(missing_ok=True)
        return len(expired)

    def _write(self, mail: OutgoingMail) -> SentMail:
        path = self.path_for(mail.key)
        if path.exists():
            with path.open("rb") as existing:
                return SentMail(BytesHeaderParser(policy=policy.default).parse(existing)["Message-ID"])
        message = EmailMessage(policy=policy.SMTP)
        message["From"] = self._sender
        message["To"] = ", ".join(mail.to)
        message["Subject"] = mail.subject
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2] or None)
        message[KEY_HEADER] = mail.key
        if mail.in_reply_to:
            message["In-Reply-To"] = mail.in_reply_to
            message["References"] = " ".join(mail.references or (mail.in_reply_to,))
        message.set_content(mail.text)
        if mail.html:
            message.add_alternative(mail.html, subtype="html")
        self._directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".eml.partial")
        with partial.open("wb") as out:
            out.write(message.as_bytes())
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
        return SentMail(message["Message-ID"])
