"""Replies to colleagues who asked by mail: the same messages Teams askers get, as mail."""

from __future__ import annotations

from domain.jobs import MailReply
from handlers.deps import Deps
from handlers.templating import templates
from mail.base import OutgoingMail
from outbox.jobs import job


@job(MailReply)
async def send_mail_reply(deps: Deps, payload: MailReply) -> None:
    """Outbox job: a reply to a mail asker; the transport dedupes on the job's key."""
    async with deps.store.unit() as unit:
        question = await unit.questions.get(payload.question_id)
    if question is None or not question.asker_email:
        return  # erased since (a subject-access erasure), or never had an address
    message = payload.message
    context = {"q": question, "m": message}
    preview = " ".join(question.text.split())[:60]
    await deps.mail.send(
        OutgoingMail(
            key=payload.key,
            to=(question.asker_email,),
            subject=f"Re: {preview} [{question.ref}]",
            text=templates.get_template("mail_reply.txt.j2").render(context),
            html=templates.get_template("mail_reply.html.j2").render(context),
            in_reply_to=question.reply_to_id,
            references=(question.reply_to_id,) if question.reply_to_id else (),
        )
    )
