"""An event's figures, read from the store: what `handlers.report` computes from plain records.

Every question of the event counts (private ones too: counts name nobody), but a private
question's topic is left out (it counts under "Other questions"), so a rare topic cannot point
at who asked. A question's topic comes from the FAQ (handlers.triage). The time to answer
is the moderator's first answer; a duplicate merged into another question was answered when
that question was.
"""

from __future__ import annotations

import base64
from typing import Literal
from zoneinfo import ZoneInfo

from domain.states import Outcome, QuestionStatus
from errors import Refused
from handlers.chart import report_chart_svg
from handlers.clock import DEFAULT_ZONE
from handlers.hosting import find_event
from handlers.markdown import md_inline, plain_line
from handlers.publishing import _clean_html
from handlers.report import (
    EventReport,
    QuestionTiming,
    event_report,
    render_report,
    report_figures,
)
from handlers.templating import templates
from store.records import Answer, Event, Question
from store.store import Store, Unit


async def load_report(unit: Unit, event: Event) -> tuple[EventReport, list[QuestionTiming]]:
    """The event's report and the per-question timings behind it (for the chart)."""
    questions = await unit.questions.of_event(event.id)
    answers = await unit.answers.of_event(event.id)
    timings = [_timing(q, answers) for q in questions]
    return event_report(timings), timings


def _timing(question: Question, answers: dict[int, list[Answer]]) -> QuestionTiming:
    outcome = question.status.properties.outcome
    answered_at = None
    if outcome is Outcome.MODERATOR:
        original = question.merged_into if question.status is QuestionStatus.MERGED else None
        first = answers.get(original or question.id, [])
        answered_at = first[0].created_at if first else None
    topic = None if question.private else question.topic
    return QuestionTiming(asked_at=question.created_at, answered_at=answered_at,
                          outcome=outcome, topic=topic)


async def report_of(store: Store, given: str, fmt: Literal["md", "text", "html"], *, by: str,
                    zone: ZoneInfo = DEFAULT_ZONE) -> str:
    """The figures of the event `given` names (`3` or `E-3`), with a chart in HTML; audit-logged."""
    if fmt not in ("md", "text", "html"):
        raise Refused(f"unknown report format {fmt!r}: use md, text or html")
    async with store.unit() as unit:
        event = await find_event(unit, given)
        report, timings = await load_report(unit, event)
        await unit.audit.record(by, "event.report", f"E-{event.id}", fmt)
    title = plain_line(event.title)
    if fmt == "md":
        return f"# E-{event.id}: {md_inline(event.title)}\n\n" + render_report(report, "md", zone)
    if fmt == "text":
        return f"E-{event.id}: {title}\n\n" + render_report(report, "text", zone)
    chart = None
    if timings:
        svg = report_chart_svg(report, timings, event.title, zone)
        chart = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    html = templates.get_template("report.html.j2").render(
        title=title, event_ref=f"E-{event.id}", figures=report_figures(report, zone), chart=chart, safe=plain_line
    )
    return _clean_html(html)
