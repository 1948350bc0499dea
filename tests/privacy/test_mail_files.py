"""The `.eml` transport's files about one person are found however the mail encodes them."""

from __future__ import annotations

from pathlib import Path

from mail.base import MailTrail, OutgoingMail
from mail.eml import EmlOutbox

ZOE = "Zoë Ångström"


async def test_files_naming_a_person_are_found_decoded_and_deleted_and_others_kept(tmp_path: Path) -> None:
    outbox = EmlOutbox(tmp_path, "questions-bot@council.example")
    about_zoe = await outbox.send(OutgoingMail(
        key="reply:7:answer", to=(f"{ZOE} <zoe@council.example>",), subject=f"Re: pay [Q-7] for {ZOE}",
        text=f"Dear {ZOE},\nyour question:\nWhen is the pay date in December?", html=f"<p>Dear {ZOE}</p>",
    ))
    await outbox.send(OutgoingMail(key="reply:8:answer", to=("sam@council.example",), subject="Re: parking [Q-8]",
                                   text="Parking is free at weekends."))
    await outbox.send(OutgoingMail(key="reply:9:answer", to=("kim@council.example",), subject="Re: thread [Q-9]",
                                   text="A follow-up.", in_reply_to=about_zoe.internet_message_id))
    files = {path.name: path.read_bytes() for path in tmp_path.glob("*.eml")}
    assert not any(ZOE.encode() in data for data in files.values()), "encoded in the file, so only decoding finds it"

    found = await outbox.find(MailTrail(texts=(ZOE,)))
    assert [mail.id for mail in found] == ["reply-7-answer.eml"]
    in_thread = await outbox.find(MailTrail(message_ids=(about_zoe.internet_message_id,)))
    assert sorted(mail.id for mail in in_thread) == ["reply-7-answer.eml", "reply-9-answer.eml"]
    assert await outbox.find(MailTrail(texts=("When is the pay date in   december?",))) == found

    assert await outbox.delete(found) == []
    assert sorted(path.name for path in tmp_path.glob("*.eml")) == ["reply-8-answer.eml", "reply-9-answer.eml"]
