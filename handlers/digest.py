"""After an event: its digest for staff news, an export for organisers, a digest in Teams.

This is the part that reads the store; `handlers.publishing` renders. What is published is
decided here, once, for every way out (CLI, Teams):

- only questions a moderator answered; dismissed, unanswered and FAQ-answered questions are
  left out (the FAQ is published already);
- a duplicate merged into another question is shown once, as "also asked as" on the original;
- private questions are left out entirely, and an anonymous asker is never named; other
  askers are named only with DIGEST_NAMES=true (`names`), since colleagues asked without
  being told they would be published;
- the event's figures (handlers.event_report) follow the questions, with a chart in HTML.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, Literal
from zoneinfo import ZoneInfo

from domain.replies import Digest
from domain.states import QuestionStatus
from errors import Refused
from handlers import replies
from handlers.asking import Said
from handlers.clock import DEFAULT_ZONE
from handlers.deps import Deps
from handlers.event_report import load_report
from handlers.hosting import find_event
from handlers.publishing import DigestQuestion, EventDigest, PublishedAnswer, render_digest
from handlers.roles import Actor, Role, require
from store.records import Answer, Event, Question
from store.store import Store, Unit

EXPORT_FIELDS = ("ref", "asked_at", "status", "text", "answer", "support", "asker", "merged_into", "faq_entry")
# A Teams message holds about 28 KB; a longer digest goes out in parts split between paragraphs.
TEAMS_PART_CHARS = 20_000


def asker_shown(question: Question) -> str | None:
    """The asker's name where it may be shown: never for an anonymous or private question."""
    return None if question.anonymous or question.private else question.asker_name


async def load_digest(unit: Unit, event: Event, *, names: bool = False) -> EventDigest:
    """The event's published questions as the renderer's plain records (with `names`, the
    askers of public, named questions are shown)."""
    questions = [q for q in await unit.questions.of_event(event.id) if not q.private]
    answers = await unit.answers.of_event(event.id)
    merged: dict[int, list[str]] = {}
    for question in questions:
        if question.status is QuestionStatus.MERGED and question.merged_into is not None:
            merged.setdefault(question.merged_into, []).append(question.ref)
    return EventDigest(
        title=event.title,
        description=event.description,
        opened_at=event.opened_at,
        closed_at=event.closed_at,
        questions=tuple(
            _digest_question(q, answers.get(q.id, []), merged.get(q.id, []), names=names)
            for q in questions if q.status is QuestionStatus.ANSWERED
        ),
    )


def _digest_question(
    question: Question, answers: list[Answer], merged_refs: list[str], *, names: bool
) -> DigestQuestion:
    return DigestQuestion(
        ref=question.ref,
        text=question.text,
        asker_name=asker_shown(question) if names else None,
        topic=question.topic,
        asked_at=question.created_at,
        answers=tuple(PublishedAnswer(text=a.text, answered_by=a.author_name, answered_at=a.created_at)
                      for a in answers),
        support=question.support,
        merged_refs=tuple(merged_refs),
        source=question.source,
    )


async def digest_of(
    store: Store, given: str, fmt: Literal["md", "html"], *, by: str, names: bool = False,
    zone: ZoneInfo = DEFAULT_ZONE,
) -> str:
    """The rendered digest of the event `given` names (`3` or `E-3`); audit-logged."""
    if fmt not in ("md", "html"):
        raise Refused(f"unknown digest format {fmt!r}: use md or html")
    async with store.unit() as unit:
        event = await find_event(unit, given)
        digest = await load_digest(unit, event, names=names)
        report, _ = await load_report(unit, event)
        await unit.audit.record(by, "event.publish", f"E-{event.id}", fmt)
    return render_digest(digest, fmt, report=report, zone=zone)


async def export_of(store: Store, given: str, fmt: Literal["csv", "jsonl"], *, by: str) -> str:
    """Every (non-private) question of the event, one row each, for the organisers' records.

    Audit-logged: the export names colleagues who asked openly."""
    if fmt not in ("csv", "jsonl"):
        raise Refused(f"unknown export format {fmt!r}: use csv or jsonl")
    async with store.unit() as unit:
        event = await find_event(unit, given)
        everything = await unit.questions.of_event(event.id)
        answers = await unit.answers.of_event(event.id)
        await unit.audit.record(by, "event.export", f"E-{event.id}", fmt)
    # Only public questions are exported, and nothing of a private one reaches them: a public
    # duplicate of a private question (merged before it was marked private) shows neither the
    # private question's reference nor its answer.
    questions = [q for q in everything if not q.private]
    refs = {q.id: q.ref for q in questions}
    rows = [_export_row(q, answers, refs) for q in questions]
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return out.getvalue()


def _export_row(question: Question, answers: dict[int, list[Answer]], refs: dict[int, str]) -> dict[str, Any]:
    # A merged duplicate was answered with its original's answer, shown only if that is public.
    original = question.merged_into
    shown = question.status in (QuestionStatus.ANSWERED, QuestionStatus.MERGED) and (
        original is None or original in refs)
    answered = answers.get(original or question.id, []) if shown else []
    return {
        "ref": question.ref,
        "asked_at": question.created_at.isoformat(timespec="seconds"),
        "status": question.status.value,
        "text": question.text,
        "answer": "\n\n".join(a.text for a in answered),
        "support": question.support,
        "asker": asker_shown(question) or "",
        "merged_into": refs.get(question.merged_into, "") if question.merged_into else "",
        "faq_entry": (question.faq_entry_id or "") if question.status is QuestionStatus.ANSWERED_FAQ else "",
    }


def _csv_cell(value: Any) -> Any:
    """Text a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is quoted with ',
    and control characters other than line breaks and tabs (terminal escapes) become spaces."""
    if not isinstance(value, str):
        return value
    value = value.translate(_CONTROL_TO_SPACE)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


_CONTROL_TO_SPACE = {code: " " for code in (*range(0x20), 0x7F) if chr(code) not in "\t\n\r"}


async def publish_here(deps: Deps, said: Said, actor: Actor, given: str | None) -> str:
    """A host posts the Markdown digest in this conversation (through the outbox).

    Returns what to tell the host, or "" when the digest itself is the reply. A redelivered
    command queues nothing new and is not logged again."""
    await require(deps, actor, Role.HOST, at=said)
    async with deps.store.unit() as unit:
        event = await find_event(unit, given) if given else await _only_event(unit)
        if event is None:
            return "Which event? Type **publish E-3 here** (see **events**)."
        report, _ = await load_report(unit, event)
        digest = await load_digest(unit, event, names=deps.limits.digest_names)
        text = render_digest(digest, "md", report=report, zone=deps.limits.timezone)
        parts = list(_parts(text, TEAMS_PART_CHARS))
        queued = False
        for number, part in enumerate(parts, start=1):
            message = Digest(event_id=event.id, markdown=part, part=number, parts=len(parts))
            queued |= await replies.enqueue_reply(
                unit.outbox, source=said.source, address=said.address, reply_to_id=said.reply_to_id, message=message,
                dedupe_key=f"reply:{said.delivery_key}" if number == 1 else f"reply:{said.delivery_key}:{number}",
            )
        if queued:
            await unit.audit.record(actor.label, "event.publish", f"E-{event.id}",
                                    f"{said.source}:{said.conversation_id}")
    return ""


async def _only_event(unit: Unit) -> Event | None:
    """With no reference: the only open event, else the only event there is."""
    open_events = await unit.events.open_events()
    if len(open_events) == 1:
        return open_events[0]
    everything = await unit.events.all()
    return everything[0] if len(everything) == 1 and not open_events else None


def _parts(text: str, limit: int) -> Iterator[str]:
    """Split between paragraphs so no part is longer than `limit` (a longer paragraph is cut)."""
    part = ""
    for paragraph in text.split("\n\n"):
        while len(paragraph) > limit:
            if part:
                yield part
                part = ""
            yield paragraph[:limit]
            paragraph = paragraph[limit:]
        candidate = f"{part}\n\n{paragraph}" if part else paragraph
        if len(candidate) > limit:
            yield part
            candidate = paragraph
        part = candidate
    if part.strip():
        yield part
