"""The embedded mail transport writes real RFC 5322 files, once per mail."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

from mail.base import OutgoingMail
from mail.eml import EmlOutbox


def _mail(**changes: object) -> OutgoingMail:
    values: dict[str, object] = {
        "key": "forward:42",
        "to": ("moderators@example.org",),
        "subject": "[Q-42] Can I buy extra annual leave?",
        "text": "Question:\nCan I buy extra annual leave?",
        "html": "<p>Can I buy extra <b>annual leave</b>?</p>",
    }
    values.update(changes)
    return OutgoingMail(**values)  # type: ignore[arg-type]


async def test_a_mail_becomes_one_readable_eml_file(tmp_path: Path) -> None:
    outbox = EmlOutbox(tmp_path, "questions-bot@council.example")
    sent = await outbox.send(_mail())
    [path] = tmp_path.glob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert message["Subject"] == "[Q-42] Can I buy extra annual leave?"
    assert message["To"] == "moderators@example.org"
    assert message["Message-ID"] == sent.internet_message_id
    assert message.get_body(("plain",)).get_content().startswith("Question:")
    assert "<b>annual leave</b>" in message.get_body(("html",)).get_content()


async def test_sending_the_same_mail_again_writes_nothing_new(tmp_path: Path) -> None:
    outbox = EmlOutbox(tmp_path, "questions-bot@council.example")
    first = await outbox.send(_mail())
    second = await outbox.send(_mail(text="a retry after a crash"))
    assert first == second
    assert len(list(tmp_path.glob("*.eml"))) == 1


async def test_a_reply_carries_threading_headers(tmp_path: Path) -> None:
    outbox = EmlOutbox(tmp_path, "questions-bot@council.example")
    await outbox.send(_mail(key="answer:42", in_reply_to="<abc@council.example>"))
    [path] = tmp_path.glob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert message["In-Reply-To"] == "<abc@council.example>"
    assert message["References"] == "<abc@council.example>"


async def test_non_ascii_subjects_names_and_bodies_survive_the_file(tmp_path: Path) -> None:
    outbox = EmlOutbox(tmp_path, "questions-bot@council.example")
    await outbox.send(_mail(
        to=("Zoë Ørsted <zoe@example.org>",),
        subject="[Q-42] Crèche places for the café staff… 🎄",
        text="Première question: what about the crèche?\n" + "long line " * 40,
        html="<p>Crèche <b>places</b> – 2026</p>",
    ))
    [path] = tmp_path.glob("*.eml")
    raw = path.read_bytes()
    assert raw.isascii() and b"\r\n" in raw  # 7-bit clean, CRLF lines, as mail servers expect
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["Subject"] == "[Q-42] Crèche places for the café staff… 🎄"
    assert message["To"].addresses[0].display_name == "Zoë Ørsted"
    assert message["To"].addresses[0].addr_spec == "zoe@example.org"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # mail's own line ends
    assert text.startswith("Première question: what about the crèche?\n")
    assert "long line " * 40 in text  # long lines are wrapped in the file, whole when read
    assert message.get_body(("html",)).get_content().strip() == "<p>Crèche <b>places</b> – 2026</p>"
