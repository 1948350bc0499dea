"""The embedded mail transport: one RFC 5322 `.eml` file per mail in a folder.

With no Graph settings the bot still forwards every question somewhere a person (or
`cli.py mail receive`) can read it. Files are named by the mail's key and written atomically,
so a retried send finds the file and sends nothing twice.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
from datetime import datetime
from email import policy
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesHeaderParser, BytesParser
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
from pathlib import Path

from clock import SYSTEM_CLOCK, Clock
from mail.base import BOT_MARKER, KeptMail, MailSearchFailed, MailTrail, OutgoingMail, SentMail

MAIL_FILE = "mail file"
#: Shorter texts (a one-word question) would match other people's mail by chance.
MIN_TEXT_CHARS = 6
_THREAD_HEADERS = ("Message-ID", "In-Reply-To", "References")
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP
_CRLF = policy.compat32.clone(linesep="\r\n")


def _text(content: str, subtype: str) -> MIMEText:
    """A UTF-8 part, quoted-printable. MIMEText takes a Charset object (documented), which is
    how the encoding is chosen per part; the stdlib's stubs admit only a name."""
    return MIMEText(content, subtype, _UTF8)  # type: ignore[arg-type]


class EmlOutbox:
    def __init__(self, directory: Path, sender: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self._directory = directory
        self._sender = sender
        self._clock = clock

    async def send(self, mail: OutgoingMail) -> SentMail:
        return await asyncio.to_thread(self._write, mail)

    async def expire(self, before: datetime, *, dry_run: bool = False) -> int:
        """Delete (with `dry_run`, count) the mail files written before `before`. They hold
        questions and names, so they are kept no longer than the database keeps its rows."""
        return await asyncio.to_thread(self._expire, before.timestamp(), dry_run)

    async def find(self, trail: MailTrail) -> list[KeptMail]:
        """The mail files that concern a person: in a thread the trail names, or mentioning
        their address, a name or a question of theirs anywhere in headers or bodies (decoded,
        since names and non-ASCII text are encoded in the file)."""
        return await asyncio.to_thread(self._find, trail)

    async def delete(self, found: list[KeptMail]) -> list[KeptMail]:
        """Delete these mail files; returns the ones that could not be deleted."""
        return await asyncio.to_thread(self._delete, found)

    def path_for(self, key: str) -> Path:
        return self._directory / (re.sub(r"[^A-Za-z0-9_.-]+", "-", key) + ".eml")

    def _expire(self, before: float, dry_run: bool) -> int:
        expired = [path for path in self._mail_files() if path.stat().st_mtime < before]
        if not dry_run:
            for path in expired:
                path.unlink(missing_ok=True)
        return len(expired)

    def _mail_files(self) -> list[Path]:
        if not self._directory.is_dir():
            return []
        return sorted(path for path in self._directory.iterdir() if path.name.endswith((".eml", ".eml.partial")))

    def _find(self, trail: MailTrail) -> list[KeptMail]:
        if not trail:
            return []
        message_ids = set(trail.message_ids)
        texts = {_folded(text) for text in trail.texts if len(text.strip()) >= MIN_TEXT_CHARS}
        found: list[KeptMail] = []
        for path in self._mail_files():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # expired or erased meanwhile
            except OSError as error:
                raise MailSearchFailed(f"could not read the mail file {path}: {error}") from None
            message = BytesParser(policy=policy.default).parsebytes(data)
            threads = {ref for name in _THREAD_HEADERS for ref in str(message.get(name, "")).split()}
            readable = _readable(message, data)
            if threads & message_ids or any(text in readable for text in texts):
                message_id = message.get("Message-ID")
                subject = str(message.get("Subject", ""))
                found.append(KeptMail(MAIL_FILE, path.name, subject, str(message_id) if message_id else None))
        return found

    def _delete(self, found: list[KeptMail]) -> list[KeptMail]:
        left: list[KeptMail] = []
        for mail in found:
            path = self._directory / mail.id
            try:
                path.unlink(missing_ok=True)
            except OSError:
                left.append(mail)
        return left

    def _write(self, mail: OutgoingMail) -> SentMail:
        path = self.path_for(mail.key)
        if path.exists():
            with path.open("rb") as existing:
                return SentMail(BytesHeaderParser(policy=policy.default).parse(existing)["Message-ID"])
        message_id = make_msgid(domain=self._sender.rpartition("@")[2] or None)
        data = _compose(mail, sender=self._sender, message_id=message_id, date=self._clock.now())
        self._directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".eml.partial")
        with partial.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
        return SentMail(message_id)


def _readable(message: Message, data: bytes) -> str:
    """Everything a person could read in a mail file, decoded and folded for searching."""
    parts = [data.decode("utf-8", "replace"), *(str(value) for value in message.values())]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            try:
                content = part.get_content()  # type: ignore[attr-defined]
            except (LookupError, ValueError):  # an unknown charset: the raw bytes above still count
                continue
            parts.append(html.unescape(content) if part.get_content_subtype() == "html" else content)
    return _folded(" ".join(parts))


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _compose(mail: OutgoingMail, *, sender: str, message_id: str, date: datetime) -> bytes:
    """The mail as RFC 5322 bytes, built with the email package's compat32 MIME classes.

    Why not `EmailMessage`: its header objects parse and refold every header; writing a
    forward took 1.7 ms of CPU with it and takes 1.2 now (most of the rest is the file system),
    and under a burst half the questions are forwarded by mail.
    Non-ASCII headers are RFC 2047-encoded and bodies quoted-printable, so the file stays
    readable in a text editor as well as in a mail client."""
    body: Message = _text(mail.text, "plain")
    if mail.html:
        body = MIMEMultipart("alternative", _subparts=[body, _text(mail.html, "html")])
    body["From"] = _addresses((sender,))
    body["To"] = _addresses(mail.to)
    body["Subject"] = mail.subject if mail.subject.isascii() else Header(mail.subject, _UTF8)  # type: ignore[assignment]
    body["Date"] = format_datetime(date)
    body["Message-ID"] = message_id
    body[BOT_MARKER] = mail.key
    if mail.in_reply_to:
        body["In-Reply-To"] = mail.in_reply_to
        body["References"] = " ".join(mail.references or (mail.in_reply_to,))
    return body.as_bytes(policy=_CRLF)


def _addresses(values: tuple[str, ...]) -> str:
    """`Name <address>` lists with any non-ASCII name encoded (the address never is)."""
    return ", ".join(formataddr(pair, charset="utf-8") for pair in getaddresses(values))
