"""Pure inbound-mail functions: classification, reply extraction, .eml parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mail.base import InboundMail
from mail.inbound import (
    html_to_text,
    inbound_from_eml,
    is_automatic,
    question_ref,
    references_of,
    reply_text,
    untrusted_because,
)


def mail(
    text: str = "Hello",
    *,
    sender: str = "jo@council.example",
    subject: str = "RE: [Q-3] Leave",
    headers: dict[str, str] | None = None,
) -> InboundMail:
    return InboundMail(
        internet_message_id="<x@council.example>",
        sender=sender,
        sender_name="Jo",
        subject=subject,
        text=text,
        received_at=datetime.now(UTC),
        headers=headers or {},
    )


@pytest.mark.parametrize(
    ("headers", "sender", "subject", "expected"),
    [
        ({"auto-submitted": "auto-replied"}, None, None, "Auto-Submitted"),
        ({"auto-submitted": "auto-generated"}, None, None, "Auto-Submitted"),
        ({"x-auto-response-suppress": "All"}, None, None, "X-Auto-Response-Suppress"),
        ({"precedence": "bulk"}, None, None, "Precedence"),
        ({"precedence": "junk"}, None, None, "Precedence"),
        ({"return-path": "<>"}, None, None, "Return-Path"),
        ({"x-autoreply": "yes"}, None, None, "auto-reply"),
        ({"x-autorespond": "yes"}, None, None, "auto-reply"),
        ({"list-id": "<staff.council.example>"}, None, None, "mailing-list"),
        ({"list-unsubscribe": "<mailto:leave@x>"}, None, None, "mailing-list"),
        ({}, "MAILER-DAEMON@mx.council.example", None, "delivery system"),
        ({}, "postmaster@council.example", None, "delivery system"),
        (
            {"content-type": "multipart/report; report-type=delivery-status"},
            None,
            None,
            "delivery status",
        ),
        ({}, None, "Automatic reply: [Q-3] Leave", "automatic subject"),
        ({}, None, "Out of Office: back Monday", "automatic subject"),
        ({}, None, "Undeliverable: [Q-3] Leave", "automatic subject"),
        ({"x-bot-key": "fwd-3"}, None, None, "this bot"),
        ({}, None, "Away: back on Monday", "automatic subject"),
        ({}, None, "Absent: until 3 March", "automatic subject"),
        ({}, None, "On annual leave - back Monday", "automatic subject"),
        ({"x-ms-exchange-inbox-rules-loop": "jo@council.example"}, None, None, "inbox rule"),
    ],
)
def test_automatic_mail_is_rejected_with_a_reason(
    headers: dict[str, str], sender: str | None, subject: str | None, expected: str
) -> None:
    m = mail(
        headers=headers, sender=sender or "jo@council.example", subject=subject or "RE: [Q-3] Leave"
    )
    reason = is_automatic(m)
    assert reason is not None and expected.lower() in reason.lower()


@pytest.mark.parametrize("subject", ["Holiday: can I carry days over?", "Absence: how do I report it?", "Away days"])
def test_questions_about_leave_are_not_mistaken_for_away_replies(subject: str) -> None:
    assert is_automatic(mail(subject=subject)) is None


def test_a_person_writing_is_accepted() -> None:
    m = mail(
        headers={"auto-submitted": "no", "from": "Jo <jo@council.example>", "received": "from mx"}
    )
    assert is_automatic(m) is None


OUTLOOK_HTML = """<html><head><style>p{margin:0}</style></head><body>
<div>Hi,</div><div><br></div>
<div>Yes, mileage for training days is claimable. Use form HR-12 &amp; send it to payroll.</div>
<div><br></div><div>Kind regards</div><div>Priya Shah</div><div>HR Advisory | Council</div>
<hr style="display:inline-block;width:98%" tabindex="-1">
<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>From:</b> Colleague Questions
&lt;questions@council.example&gt;<br><b>Sent:</b> 12 March 2025 10:01<br><b>To:</b> HR Advisory
&lt;hr@council.example&gt;<br><b>Subject:</b> [Q-42] Mileage</font><div>&nbsp;</div></div>
<div>A colleague asked: can I claim mileage for a training day?</div>
</body></html>"""


def test_outlook_html_reply_loses_history_and_signature() -> None:
    text = reply_text(mail(html_to_text(OUTLOOK_HTML)))
    assert text == (
        "Hi,\n\nYes, mileage for training days is claimable. Use form HR-12 & send it to payroll."
    )


def test_gmail_plain_reply_loses_quote_and_signature() -> None:
    body = (
        "Two volunteering days a year - book them in the HR portal.\n"
        "- ask your manager first\n- then book\n\n"
        "Thanks,\nTom\n\n"
        "On Tue, 11 Mar 2025 at 09:12, Colleague Questions <questions@council.example> wrote:\n"
        "> A colleague asked:\n> How many volunteering days do we get?\n"
    )
    assert reply_text(mail(body)) == (
        "Two volunteering days a year - book them in the HR portal.\n"
        "- ask your manager first\n- then book"
    )


def test_gmail_html_reply_with_dash_dash_signature() -> None:
    html = (
        '<div dir="ltr">Answer is <b>yes</b>.<div><br></div><div>-- <br>Tom Jones<br>'
        'Facilities</div></div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        "On Tue, 11 Mar 2025 at 09:12, Questions &lt;q@council.example&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote">Is the canteen open on Saturday?</blockquote></div>'
    )
    assert reply_text(mail(html_to_text(html))) == "Answer is yes."


def test_script_in_html_comes_out_inert() -> None:
    html = (
        '<p>Use the <a href="javascript:alert(1)" onclick="steal()">portal</a>.</p>'
        "<script>alert('x')</script><img src=x onerror=alert(2)>"
        "<p>&lt;script&gt;alert(3)&lt;/script&gt; and 3 &lt; 5</p>"
    )
    text = reply_text(mail(html_to_text(html)))
    assert "<" not in text.replace("3 < 5", "")
    assert "alert" not in text and "onerror" not in text and "javascript" not in text
    assert "Use the portal." in text and "3 < 5" in text


def test_question_ref() -> None:
    assert question_ref("RE: FW: [Q-42] Mileage") == 42
    assert question_ref("[q-7] lower case") == 7
    assert question_ref("Q-42 without brackets") is None
    assert question_ref("") is None


def test_references_of_normalises_and_orders() -> None:
    m = InboundMail(
        internet_message_id="<r@x>",
        sender="a@x",
        sender_name="",
        subject="s",
        text="t",
        received_at=datetime.now(UTC),
        in_reply_to="parent@x",
        references=("<root@x> <parent@x>",),
    )
    assert references_of(m) == ("<parent@x>", "<root@x>")


EML = b"""Return-Path: <sam@council.example>
From: "Sam Patel" <Sam.Patel@council.example>
To: Colleague Questions <questions@council.example>
Subject: =?utf-8?q?RE=3A_=5BQ-9=5D_Caf=C3=A9_opening_hours?=
Date: Wed, 12 Mar 2025 10:15:00 +0000
Message-ID: <CAF9@mail.council.example>
In-Reply-To: <fwd-9@council.example>
References: <q-9@council.example>
 <fwd-9@council.example>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

The caf=C3=A9 opens at 8am.

On Tue, 11 Mar 2025 at 09:12, Colleague Questions wrote:
> When does the caf=C3=A9 open?
--b1
Content-Type: text/html; charset="utf-8"

<p>The caf&eacute; opens at 8am.</p>
--b1--
"""


def test_eml_parsing() -> None:
    m = inbound_from_eml(EML, datetime.now(UTC))
    assert m.internet_message_id == "<CAF9@mail.council.example>"
    assert m.sender == "sam.patel@council.example" and m.sender_name == "Sam Patel"
    assert m.subject == "RE: [Q-9] Caf\u00e9 opening hours"
    assert m.received_at == datetime(2025, 3, 12, 10, 15, tzinfo=UTC)
    assert m.in_reply_to == "<fwd-9@council.example>"
    assert m.references == ("<q-9@council.example>", "<fwd-9@council.example>")
    assert m.headers["return-path"] == "<sam@council.example>"
    assert reply_text(m) == "The caf\u00e9 opens at 8am."
    assert is_automatic(m) is None
    assert question_ref(m.subject) == 9


def test_eml_without_message_id_gets_a_stable_one() -> None:
    data = b"From: a@x.example\nSubject: hi\n\nbody\n"
    first, again = inbound_from_eml(data, datetime.now(UTC)), inbound_from_eml(data, datetime.now(UTC))
    assert first.internet_message_id == again.internet_message_id
    assert inbound_from_eml(data, datetime.now(UTC)).text.strip() == "body"


def test_html_only_eml_is_converted_to_text() -> None:
    data = (
        b"From: a@x.example\nSubject: hi\nContent-Type: text/html; charset=utf-8\n\n"
        b"<html><body><p>First</p><script>bad()</script><p>Second</p></body></html>\n"
    )
    assert inbound_from_eml(data, datetime.now(UTC)).text == "First\n\nSecond"


INTERNAL = {
    "x-ms-exchange-organization-authas": "Internal",
    "x-ms-exchange-organization-authsource": "AM9PR07MB7105.eurprd07.prod.outlook.com",
    # as Exchange Online reports mail between two mailboxes of one tenant
    "authentication-results": "spf=fail (sender IP is 2603:10a6::12) smtp.mailfrom=council.example; "
    "dkim=none (message not signed) header.d=none;dmarc=none action=none header.from=council.example;",
}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "AuthAs missing"),
        ({**INTERNAL, "x-ms-exchange-organization-authas": "Anonymous"}, "anonymous, not Internal"),
        ({**INTERNAL, "x-ms-exchange-organization-authas": "Partner"}, "partner, not Internal"),
        ({**INTERNAL, "x-ms-exchange-organization-authas": "Internal\nAnonymous"}, "not Internal"),
        ({k: v for k, v in INTERNAL.items() if k != "x-ms-exchange-organization-authsource"}, "AuthSource missing"),
        ({**INTERNAL, "authentication-results": "spf=pass; dkim=fail header.d=council.example"}, "dkim=fail"),
        ({**INTERNAL, "authentication-results": "dmarc=fail action=none header.from=council.example"}, "dmarc=fail"),
        (
            {**INTERNAL, "authentication-results": "spf=pass;dkim=pass;dmarc=pass;compauth=fail reason=601"},
            "compauth=fail",
        ),
    ],
)
def test_mail_exchange_does_not_vouch_for_is_untrusted(headers: dict[str, str], expected: str) -> None:
    reason = untrusted_because(headers)
    assert reason is not None and expected in reason


def test_internal_mail_is_trusted_though_spf_failed_on_the_internal_hop() -> None:
    assert untrusted_because(INTERNAL) is None
