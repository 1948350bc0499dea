"""Reading inbound mail, whatever brought it: .eml files or Graph.

Pure functions only. They decide what the product needs to know about a mail: which question
it refers to (`question_ref`, `references_of`), whether a person wrote it at all
(`is_automatic`), whether Exchange vouches that it was sent inside the organisation
(`untrusted_because`), and what the person actually said, without the quoted history and
signature (`reply_text`). The result of `reply_text` is plain text with no markup left in it.

Bodies are cut to a bound before any of the (pure Python, CPU-bound) parsing: a typed answer is
a few KB, and a 10 MB mail must not cost seconds of parsing.
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

from mail.base import BOT_MARKER, InboundMail

#: Characters of a mail body kept for parsing; the rest of a longer mail is never looked at.
#: A typed reply or question is a few thousand characters; this keeps a long quoted thread.
MAX_BODY_CHARS = 64 * 1024
#: HTML is cut at this many characters before it is turned into text (markup is verbose).
MAX_HTML_CHARS = 4 * MAX_BODY_CHARS
#: Bytes of a mail's MIME source read from Graph: its headers and the start of its body.
MAX_MIME_BYTES = MAX_HTML_CHARS + 64 * 1024

_QUESTION_REF = re.compile(r"\[\s*Q-(\d{1,9})\s*\]", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")

#: Subjects that servers and clients put on replies nobody typed.
_AUTOMATIC_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto[- ]?reply|autoreply|out of (the )?office|undeliverable|"
    r"undelivered mail|delivery status notification|delivery has failed|"
    r"mail delivery (failed|subsystem)|returned mail|failure notice|read:|not read:|"
    # not "Holiday:" or "Absence:": staff ask about holidays and absence under such subjects
    r"(away|absent|on (annual )?leave|ooo)( from (the )?office)?\s*[:\-]|"
    r"r[ée]ponse automatique|respuesta autom[áa]tica|automatische antwort|abwesend)",
    re.IGNORECASE,
)
#: Exchange's verdict on how the sender authenticated; the header firewall strips any copy a
#: sender from outside the organisation wrote, and Exchange stamps its own.
AUTH_AS = "x-ms-exchange-organization-authas"
AUTH_SOURCE = "x-ms-exchange-organization-authsource"
_VERDICT = re.compile(r"\b(spf|dkim|dmarc|compauth)\s*=\s*([a-z]+)", re.IGNORECASE)
#: Verdicts that say the From address was not authenticated. SPF alone is not among them: Exchange
#: Online reports spf=fail for mail between mailboxes of one tenant (the internal hop's address is
#: in no SPF record), while AuthAs: Internal already says the sender signed in to the tenant.
_FAILED = {"dkim": {"fail", "permerror"}, "dmarc": {"fail"}, "compauth": {"fail", "softfail"}}
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


def is_automatic(mail: InboundMail) -> str | None:
    """Why this mail must never count as a question or an answer, or None if a person wrote it.

    Auto-replies answered by the bot would loop; bounces and list mail are not questions. The
    bot's own mail is known by its marker header, not by its From address (see BOT_MARKER).
    """
    h: Mapping[str, str] = mail.headers
    sender = mail.sender.strip().lower()
    if BOT_MARKER.lower() in h:
        return f"sent by this bot ({BOT_MARKER})"
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
    if "x-ms-exchange-inbox-rules-loop" in h:
        return "sent by an inbox rule (X-MS-Exchange-Inbox-Rules-Loop)"
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


def untrusted_because(headers: Mapping[str, str]) -> str | None:
    """Why Exchange does not vouch that this mail was sent inside the organisation, or None.

    Trusted means: `X-MS-Exchange-Organization-AuthAs: Internal` (the sender signed in to this
    tenant, or came through the organisation's own connector), an `AuthSource` server named,
    and no DKIM, DMARC or composite-authentication failure in `Authentication-Results`.
    Anything else (Anonymous, Partner, no verdict at all) is mail from outside.
    """
    auth_as = {value.strip().lower() for value in headers.get(AUTH_AS, "").split("\n") if value.strip()}
    if not auth_as:
        return "no Exchange verdict (X-MS-Exchange-Organization-AuthAs missing)"
    if auth_as != {"internal"}:
        return f"X-MS-Exchange-Organization-AuthAs: {', '.join(sorted(auth_as))}, not Internal"
    if not headers.get(AUTH_SOURCE, "").strip():
        return "X-MS-Exchange-Organization-AuthSource missing"
    failed = sorted(
        {
            f"{name.lower()}={result.lower()}"
            for name, result in _VERDICT.findall(headers.get("authentication-results", ""))
            if result.lower() in _FAILED.get(name.lower(), ())
        }
    )
    if failed:
        return f"Authentication-Results: {' '.join(failed)}"
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
    """Readable plain text from an HTML mail body (its first MAX_HTML_CHARS characters)."""
    parser = _TextExtractor()
    parser.feed(markup[:MAX_HTML_CHARS])
    parser.close()
    return parser.text()


def plain_text(text: str) -> str:
    """Remove anything that is markup, including markup hidden behind entities.

    Cleaning repeats until nothing changes, so `&lt;script&gt;` typed into a mail cannot
    come back as a live tag after unescaping. Bare `<` and `&` in prose are kept.
    """
    current = text
    for _ in range(5):
        cleaned = html.unescape(nh3.clean(current, tags=set(), clean_content_tags={"script", "style"}))
        if cleaned == current:
            return cleaned
        current = cleaned
    return html.escape(current, quote=False)


def bounded_text(text: str) -> str:
    """A mail body as parsing sees it: CRLF as LF, cut to MAX_BODY_CHARS."""
    return text[: 2 * MAX_BODY_CHARS].replace("\r\n", "\n")[:MAX_BODY_CHARS]


def reply_text(mail: InboundMail) -> str:
    """The newest part of a reply: no quoted history, no signature, no markup.

    CPU-bound (regular expressions over the body): callers on the event loop run it in a thread.
    """
    text = bounded_text(mail.text)
    parsed = ParsedReply(text=text, languages=["en"], keep_hyphen_lists=True).read()
    newest = parsed.replies[0].body if parsed.replies else text
    lines = [line for line in newest.splitlines() if not line.startswith(">")]
    return plain_text("\n".join(lines)).strip()


def _readable_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if part.get_content_type() == "text/html":
        return bounded_text(html_to_text(content))
    return bounded_text(str(content))


def body_from_mime(data: bytes) -> str:
    """The readable body of a mail's MIME source, of which only the first MAX_MIME_BYTES may be
    here: a cut source ends at its last whole line, so no base64 or quoted-printable line is
    split. A body no parser can read is empty (the mail is then no answer and no question)."""
    if len(data) >= MAX_MIME_BYTES:
        data = data[: data.rfind(b"\n") + 1]
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    try:
        return _readable_body(message)
    except (ValueError, TypeError, LookupError):  # a charset or encoding nobody knows
        return ""


def inbound_from_eml(data: bytes, now: datetime) -> InboundMail:
    """An `InboundMail` from raw RFC 5322 bytes (a saved .eml file); without a readable Date,
    received `now`."""
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
        received = now
    in_reply_to = message_ids(headers.get("in-reply-to"))
    return InboundMail(
        internet_message_id=imid,
        sender=sender.lower(),
        sender_name=sender_name,
        subject=headers.get("subject", ""),
        text=_readable_body(message),
        received_at=received,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=message_ids(headers.get("references")),
        conversation_id=None,
        headers=headers,
    )
