"""Nothing waits unseen: questions left with the moderators too long are listed in their channel.

Each instance of the bot checks every few minutes; the reminder goes through the outbox with a
dedupe key naming the reminder period (time cut into periods of REMINDER_AFTER_HOURS), so
however many instances check, one reminder is queued per period, and a question is listed at
most once in it. The reminder is queued at the first check in a period that finds a question
waiting longer than the limit; a question that passes the limit later in that period is listed
at the start of the next one, so none waits unseen longer than two periods.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from domain.replies import Notice
from domain.states import QuestionStatus
from handlers import replies
from handlers.channels import Channel, source_of
from handlers.markdown import md_inline
from handlers.queue import MODERATORS_CHANNEL
from handlers.report import human_duration
from store.records import Question
from store.store import Store

LISTED = 20  # more than this is a backlog; the count says how big
SHOWN_CHARS = 140
REMINDER_KEY = "reminder"


async def remind_waiting(store: Store, channel: Callable[[str], Channel], *, after: timedelta, now: datetime) -> int:
    """Queue this period's reminder if questions have waited longer than `after` (`channel`:
    the chat channel of a source, as Deps.channel gives it).

    Returns how many questions the queued reminder lists; 0 when nothing is overdue, no
    moderators' channel is set up, or this period's reminder was queued already."""
    period = after.total_seconds()
    bucket = math.floor(now.timestamp() / period)
    async with store.unit() as unit:
        queue = await unit.state.get(MODERATORS_CHANNEL)
        if queue is None:
            return 0
        waiting = await unit.questions.waiting_since(now - after, limit=10_000)
        if not waiting:
            return 0
        address = json.loads(queue)
        source = source_of(address)
        queued = await replies.enqueue_reply(
            unit.outbox,
            source=source,
            address=channel(source).chat_itself(address),  # a new post, not a reply in an old thread
            reply_to_id=None,
            message=Notice(_reminder_text(waiting, after, now)),
            dedupe_key=f"{REMINDER_KEY}:{round(period)}:{bucket}",
        )
    return len(waiting) if queued else 0


def _reminder_text(waiting: list[Question], after: timedelta, now: datetime) -> str:
    count = len(waiting)
    limit = human_duration(after.total_seconds())
    heading = (f"**{count} question{'s have' if count != 1 else ' has'} waited more than {limit} "
               "for an answer**")
    lines = [_line(question, now) for question in waiting[:LISTED]]
    if count > LISTED:
        lines.append(f"- and {count - LISTED} more")
    footer = ("Answer, dismiss or mark each one a duplicate on its card in this channel; "
              "**show Q-n** posts a question's card here again.")
    return "\n\n".join([heading, "\n".join(lines), footer])


def _line(question: Question, now: datetime) -> str:
    text = " ".join(question.text.split())
    if len(text) > SHOWN_CHARS:
        text = text[: SHOWN_CHARS - 1] + "\u2026"
    waited = human_duration((now - question.created_at).total_seconds())
    state = (f"claimed by {md_inline(question.claimed_by)}"
             if question.status is QuestionStatus.CLAIMED and question.claimed_by else "not claimed")
    return f"- **{question.ref}** ({state}, waiting {waited}): {md_inline(text)}"
