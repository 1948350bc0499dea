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
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesHeaderParser
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
from datetime import datetime
from pathlib import Path

from mail.base import BOT_MARKER, OutgoingMail, SentMail
from store.schema import utcnow

_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP
_CRLF = policy.compat32.clone(linesep="\r\n")


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
        message_id = make_msgid(domain=self._sender.rpartition("@")[2] or None)
        data = _compose(mail, sender=self._sender, message_id=message_id)
        self._directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".eml.partial")
        with partial.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
        return SentMail(message_id)


def _compose(mail: OutgoingMail, *, sender: str, message_id: str) -> bytes:
    """The mail as RFC 5322 bytes, built with the email package's compat32 MIME classes.

    Why not `EmailMessage`: its header objects parse and refold every header; writing a
    forward took 1.7 ms of CPU with it and takes 1.2 now (most of the rest is the file system),
    and under a burst half the questions are forwarded by mail.
    Non-ASCII headers are RFC 2047-encoded and bodies quoted-printable, so the file stays
    readable in a text editor as well as in a mail client."""
    body: Message = MIMEText(mail.text, "plain", _UTF8)
    if mail.html:
        body = MIMEMultipart("alternative", _subparts=[body, MIMEText(mail.html, "html", _UTF8)])
    body["From"] = _addresses((sender,))
    body["To"] = _addresses(mail.to)
    body["Subject"] = mail.subject if mail.subject.isascii() else Header(mail.subject, _UTF8)  # type: ignore[assignment]
    body["Date"] = format_datetime(utcnow())
    body["Message-ID"] = message_id
    body[BOT_MARKER] = mail.key
    if mail.in_reply_to:
        body["In-Reply-To"] = mail.in_reply_to
        body["References"] = " ".join(mail.references or (mail.in_reply_to,))
    return body.as_bytes(policy=_CRLF)


def _addresses(values: tuple[str, ...]) -> str:
    """`Name <address>` lists with any non-ASCII name encoded (the address never is)."""
    return ", ".join(formataddr(pair, charset="utf-8") for pair in getaddresses(values))
