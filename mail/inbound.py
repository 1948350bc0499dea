"""Reading inbound mail, whatever brought it: .eml files or Graph.

Pure functions only. They decide what the product needs to know about a mail: which question
it refers to (`question_ref`, `references_of`), whether a person wrote it at all
(`is_automatic`), and what the person actually said, without the quoted history and signature
(`reply_text`). The result of `reply_text` is plain text with no markup left in it.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser

import nh3
from mailparser_reply import EmailMessage as ParsedReply

from mail.base import InboundMail

_QUESTION_REF = re.compile(r"\[\s*Q-(\d{1,9})\s*\]", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")

#: Subjects that servers and clients put on replies nobody typed.
_AUTOMATIC_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto[- ]?reply|autoreply|out of (the )?office|undeliverable|"
    r"undelivered mail|delivery status notification|delivery has failed|"
    r"mail delivery (failed|subsystem)|returned mail|failure notice|read:|not read:)",
    re.IGNORECASE,
)
_ROBOT_LOCAL_PARTS = (
    "mailer-daemon",
    "postmaster",
    "microsoftexchange329e71ec88ae4615bbc36ab6ce41109e",
)


def normalise_message_id(value: str) -> str:
    """`<id>` form, as References lists and Graph's internetMessageId use it."""
    value = value.strip()
    if not value:
        return ""
    return value if value.startswith("<") else f"<{value.strip('<>')}>"


def message_ids(value: str | None) -> tuple[str, ...]:
    """All message ids in a header value, in order; bare ids are accepted too."""
    if not value:
        return ()
    found = _MESSAGE_ID.findall(value)
    if not found:
        found = [normalise_message_id(part) for part in value.split() if part.strip("<>")]
    return tuple(found)


def question_ref(subject: str) -> int | None:
    """The question number in a `[Q-42]` subject token, or None."""
    match = _QUESTION_REF.search(subject or "")
    return int(match.group(1)) if match else None


def references_of(mail: InboundMail) -> tuple[str, ...]:
    """In-Reply-To then References, normalised and without repeats: what a reply points at."""
    ordered: list[str] = []
    candidates = list(message_ids(mail.in_reply_to))
    for ref in mail.references:
        candidates.extend(message_ids(ref))
    for mid in candidates:
        if mid and mid not in ordered:
            ordered.append(mid)
    return tuple(ordered)


def headers_dict(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased header names; a repeated header keeps its values joined by newlines."""
    result: dict[str, str] = {}
    for name, value in pairs:
        key = name.strip().lower()
        text = str(value).strip()
        result[key] = f"{result[key]}\n{text}" if key in result else text
    return result


def is_automatic(mail: InboundMail, *, own_addresses: Iterable[str] = ()) -> str | None:
    """Why this mail must never count as a question or an answer, or None if a person wrote it.

    Auto-replies answered by the bot would loop; bounces and list mail are not questions.
    `own_addresses` are the shared mailbox's addresses: mail from them is the bot's own.
    """
    h: Mapping[str, str] = mail.headers
    sender = mail.sender.strip().lower()
    if "x-bot-key" in h:
        return "sent by this bot (X-Bot-Key)"
    if sender and sender in {a.strip().lower() for a in own_addresses}:
        return "sent from the bot's own mailbox"
    auto_submitted = h.get("auto-submitted", "").strip().lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto_submitted}"
    if h.get("x-auto-response-suppress", "").strip():
        return "X-Auto-Response-Suppress is set (automated sender)"
    precedence = h.get("precedence", "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if h.get("return-path", "").strip() == "<>":
        return "empty Return-Path (bounce)"
    for name in ("x-autoreply", "x-autorespond", "x-autoreply-from", "x-mail-autoreply"):
        if name in h:
            return f"{name} header (auto-reply)"
    if "list-id" in h or "list-unsubscribe" in h:
        return "mailing-list mail (List-Id/List-Unsubscribe)"
    local = sender.split("@", 1)[0]
    if local in _ROBOT_LOCAL_PARTS:
        return f"sent by {local} (delivery system)"
    content_type = h.get("content-type", "").lower()
    if "multipart/report" in content_type or "delivery-status" in content_type:
        return "delivery status report"
    if _AUTOMATIC_SUBJECT.match(mail.subject or ""):
        return f"automatic subject: {mail.subject[:60]!r}"
    return None


class _TextExtractor(HTMLParser):
    """HTML to plain text that keeps paragraphs and marks blockquotes with '> '.

    The quote marks let the reply parser recognise quoted history in HTML mail the same way as
    in plain-text mail. Script, style and head content is dropped, never shown.
    """

    _DROP = frozenset({"script", "style", "head", "title", "noscript", "template", "svg", "object"})
    _BLOCK = frozenset(
        {
            "p",
            "div",
            "tr",
            "table",
            "ul",
            "ol",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "pre",
            "section",
            "article",
            "header",
            "footer",
            "address",
            "center",
            "dl",
            "dt",
            "dd",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._lines: list[tuple[int, str]] = []
        self._current = ""
        self._depth = 0
        self._drop = 0
        self._pre = 0

    def _break(self) -> None:
        self._lines.append((self._depth, self._current.strip()))
        self._current = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._DROP:
            self._drop += 1
        elif tag == "br":
            self._break()
        elif tag == "hr":
            self._break()
            self._lines.append((self._depth, ""))
        elif tag == "blockquote":
            self._break()
            self._depth += 1
        elif tag == "li":
            self._break()
            self._current = "* "
        elif tag in ("td", "th"):
            self._current += " "
        elif tag in self._BLOCK:
            self._break()
            if tag == "pre":
                self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._DROP:
            self._drop = max(0, self._drop - 1)
        elif tag == "blockquote":
            self._break()
            self._depth = max(0, self._depth - 1)
        elif tag in self._BLOCK or tag == "li":
            self._break()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._drop:
            return
        if self._pre:
            parts = data.split("\n")
            for part in parts[:-1]:
                self._current += part
                self._break()
            self._current += parts[-1]
            return
        self._current += re.sub(r"\s+", " ", data)

    def text(self) -> str:
        self._break()
        out: list[str] = []
        for depth, line in self._lines:
            prefix = "> " * depth
            out.append((prefix + line).rstrip() if line else prefix.rstrip())
        joined = "\n".join(out)
        return re.sub(r"\n{3,}", "\n\n", joined).strip()


def html_to_text(markup: str) -> str:
    """Readable plain text from an HTML mail body."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return parser.text()


def plain_text(text: str) -> str:
    """Remove anything that is markup, including markup hidden behind entities.

    Cleaning repeats until nothing changes, so `&lt;script&gt;` typed into a mail cannot
    come back as a live tag after unescaping. Bare `<` and `&` in prose are kept.
    """
    current = text
    for _ in range(5):
        cleaned = html.unescape(
            nh3.clean(current, tags=set(), clean_content_tags={"script", "style"})
        )
        if cleaned == current:
            return cleaned
        current = cleaned
    return html.escape(current, quote=False)


def reply_text(mail: InboundMail) -> str:
    """The newest part of a reply: no quoted history, no signature, no markup."""
    parsed = ParsedReply(text=mail.text, languages=["en"], keep_hyphen_lists=True).read()
    newest = parsed.replies[0].body if parsed.replies else mail.text
    lines = [line for line in newest.splitlines() if not line.startswith(">")]
    return plain_text("\n".join(lines)).strip()


def _body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if part.get_content_type() == "text/html":
        return html_to_text(content)
    return str(content).replace("\r\n", "\n")


def inbound_from_eml(data: bytes) -> InboundMail:
    """An `InboundMail` from raw RFC 5322 bytes (a saved .eml file)."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    headers = headers_dict((k, str(v)) for k, v in message.items())
    sender_name, sender = parseaddr(headers.get("from", ""))
    if not sender:
        addresses = getaddresses([headers.get("sender", "")])
        sender_name, sender = addresses[0] if addresses else ("", "")
    imid = normalise_message_id(headers.get("message-id", ""))
    if not imid:
        # no Message-ID: a stable one, so reading the same file twice is the same mail
        imid = f"<{hashlib.sha256(data).hexdigest()[:32]}@eml.invalid>"
    try:
        received = parsedate_to_datetime(headers["date"])
        if received.tzinfo is None:
            received = received.replace(tzinfo=UTC)
    except (KeyError, TypeError, ValueError):
        received = datetime.now(UTC)
    in_reply_to = message_ids(headers.get("in-reply-to"))
    return InboundMail(
        internet_message_id=imid,
        sender=sender.lower(),
        sender_name=sender_name,
        subject=headers.get("subject", ""),
        text=_body_text(message),
        received_at=received,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=message_ids(headers.get("references")),
        conversation_id=None,
        headers=headers,
    )
