"""Figures a host asks for after a live event.

Pure functions over plain records: the lead reads the store and hands over one
`QuestionTiming` per question. Times come in as UTC (naive values are taken as UTC)
and are shown in the organisation's TIMEZONE (Europe/London unless set), the clock colleagues saw.

Decisions worth knowing:
- "Time to answer" is `answered_at - asked_at` for moderator answers only. FAQ answers
  arrive within a second of asking, so they would drag the median towards zero and hide
  how long people waited for a person; they are counted in `answered_faq` instead.
- `busiest_minutes` holds every minute in which a question was asked, busiest first
  (ties: earlier first). The rendered figures show the top three; the chart uses them all.
- `topics` counts every question asked by topic (dismissed ones too: they still say what
  was on colleagues' minds), most asked first, and the questions with no topic last as
  "Other questions", as the digest heads them; the counts add up to the questions asked.

The questions-per-minute chart is drawn by `handlers.chart`; user text is escaped by
`handlers.markdown`.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from domain.states import Outcome
from handlers.clock import DEFAULT_ZONE, as_utc, clock_time
from handlers.markdown import md_inline, plain_line
from handlers.templating import templates

SHOWN_BUSIEST = 3
OTHER_TOPIC = "Other questions"  # questions with no topic, in the digest and the figures


@dataclass(frozen=True)
class QuestionTiming:
    asked_at: datetime
    answered_at: datetime | None
    outcome: Outcome
    topic: str | None


@dataclass(frozen=True)
class EventReport:
    asked: int
    answered_faq: int
    answered_moderators: int
    dismissed: int
    waiting: int
    median_seconds_to_answer: float | None
    busiest_minutes: tuple[tuple[datetime, int], ...]
    topics: tuple[tuple[str, int], ...]  # (topic, questions), most asked first, OTHER_TOPIC last


@dataclass(frozen=True)
class ReportFigures:
    """The report as display strings, shared by the standalone report and the digest."""

    rows: tuple[tuple[str, str], ...]
    busiest: tuple[str, ...]
    topics: tuple[tuple[str, str], ...]  # (topic name as given, "12 questions"), every topic



def utc_minute(moment: datetime) -> datetime:
    """The UTC minute `moment` falls in: the unit of the busiest minutes and the chart."""
    return as_utc(moment).replace(second=0, microsecond=0)


def event_report(timings: Sequence[QuestionTiming]) -> EventReport:
    """Count outcomes, time the moderators' answers and find the busy minutes and topics."""
    outcomes = Counter(t.outcome for t in timings)
    waits = [
        max(0.0, (as_utc(t.answered_at) - as_utc(t.asked_at)).total_seconds())
        for t in timings
        if t.outcome == Outcome.MODERATOR and t.answered_at is not None
    ]
    per_minute = Counter(utc_minute(t.asked_at) for t in timings)
    topics = _topic_counts(timings)
    untopical = len(timings) - sum(topics.values())
    return EventReport(
        asked=len(timings),
        answered_faq=outcomes[Outcome.FAQ],
        answered_moderators=outcomes[Outcome.MODERATOR],
        dismissed=outcomes[Outcome.DISMISSED],
        waiting=outcomes[Outcome.WAITING],
        median_seconds_to_answer=float(statistics.median(waits)) if waits else None,
        busiest_minutes=tuple(sorted(per_minute.items(), key=lambda item: (-item[1], item[0]))),
        topics=(
            *sorted(topics.items(), key=lambda item: (-item[1], item[0].casefold())),
            *([(OTHER_TOPIC, untopical)] if untopical else []),
        ),
    )


def _topic_counts(timings: Sequence[QuestionTiming]) -> Counter[str]:
    """Questions per topic, ignoring case and spacing ("it" and "IT " are one topic),
    named as first seen; questions without a topic are not counted here."""
    names: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for t in timings:
        name = " ".join((t.topic or "").split())
        if name and name.casefold() != OTHER_TOPIC.casefold():
            counts[names.setdefault(name.casefold(), name)] += 1
    return counts


def human_duration(seconds: float) -> str:
    """'45 s', '4 min 30 s', '1 h 5 min': what a reader takes in at a glance."""
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _questions(count: int) -> str:
    return f"{count} question" if count == 1 else f"{count} questions"


def report_figures(report: EventReport, zone: ZoneInfo = DEFAULT_ZONE) -> ReportFigures:
    """Turn the numbers into the phrases the templates print."""
    median = report.median_seconds_to_answer
    rows = (
        ("Questions asked", str(report.asked)),
        ("Answered from the FAQ", str(report.answered_faq)),
        ("Answered by moderators", str(report.answered_moderators)),
        ("Dismissed", str(report.dismissed)),
        ("Still waiting", str(report.waiting)),
        (
            "Median time for a moderator to answer",
            human_duration(median) if median is not None else "no moderator answers yet",
        ),
    )
    busiest = tuple(
        f"{clock_time(minute, zone)} \u2014 {_questions(count)}"
        for minute, count in report.busiest_minutes[:SHOWN_BUSIEST]
    )
    topics = tuple((name, _questions(count)) for name, count in report.topics)
    return ReportFigures(rows=rows, busiest=busiest, topics=topics)


def render_report(report: EventReport, fmt: Literal["md", "text"], zone: ZoneInfo = DEFAULT_ZONE) -> str:
    """The figures on their own, for a Teams message to the host or the event log."""
    figures = report_figures(report, zone)
    if fmt == "md":
        return templates.get_template("report.md.j2").render(figures=figures, safe=md_inline)
    if fmt == "text":
        return templates.get_template("report.txt.j2").render(figures=figures, safe=plain_line)
    raise ValueError(f"unknown report format {fmt!r}")
