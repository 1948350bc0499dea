"""Figures a host asks for after a live event, and a questions-per-minute chart.

Pure functions over plain records: the lead reads the store and hands over one
`QuestionTiming` per question. Times come in as UTC (naive values are taken as UTC)
and are shown in Europe/London local time, because that is the clock colleagues saw.

Decisions worth knowing:
- "Time to answer" is `answered_at - asked_at` for moderator answers only. FAQ answers
  arrive within a second of asking, so they would drag the median towards zero and hide
  how long people waited for a person; they are counted in `answered_faq` instead.
- `busiest_minutes` holds every minute in which a question was asked, busiest first
  (ties: earlier first). The rendered figures show the top three; the chart uses them all.
- `top_topics` counts every question asked (dismissed ones too: they still say what was
  on colleagues' minds) and leaves out questions with no topic.
"""

from __future__ import annotations

import hashlib
import html
import re
import statistics
import sys
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from handlers.templating import templates

LONDON = ZoneInfo("Europe/London")
SHOWN_BUSIEST = 3
SHOWN_TOPICS = 5
_SVG_NS = "http://www.w3.org/2000/svg"


@dataclass(frozen=True)
class QuestionTiming:
    asked_at: datetime
    answered_at: datetime | None
    outcome: Literal["faq", "moderator", "dismissed", "waiting"]
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
    top_topics: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ReportFigures:
    """The report as display strings, shared by the standalone report and the digest."""

    rows: tuple[tuple[str, str], ...]
    busiest: tuple[str, ...]
    topics: tuple[tuple[str, str], ...]  # (topic name as given, "12 questions")


def as_utc(moment: datetime) -> datetime:
    """Treat naive datetimes as UTC so that mixed inputs still compare and convert."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _minute(moment: datetime) -> datetime:
    return as_utc(moment).replace(second=0, microsecond=0)


def event_report(timings: Sequence[QuestionTiming]) -> EventReport:
    """Count outcomes, time the moderators' answers and find the busy minutes and topics."""
    outcomes = Counter(t.outcome for t in timings)
    waits = [
        max(0.0, (as_utc(t.answered_at) - as_utc(t.asked_at)).total_seconds())
        for t in timings
        if t.outcome == "moderator" and t.answered_at is not None
    ]
    per_minute = Counter(_minute(t.asked_at) for t in timings)
    topics = _topic_counts(timings)
    return EventReport(
        asked=len(timings),
        answered_faq=outcomes["faq"],
        answered_moderators=outcomes["moderator"],
        dismissed=outcomes["dismissed"],
        waiting=outcomes["waiting"],
        median_seconds_to_answer=float(statistics.median(waits)) if waits else None,
        busiest_minutes=tuple(sorted(per_minute.items(), key=lambda item: (-item[1], item[0]))),
        top_topics=tuple(
            sorted(topics.items(), key=lambda item: (-item[1], item[0].casefold()))[:SHOWN_TOPICS]
        ),
    )


def _topic_counts(timings: Sequence[QuestionTiming]) -> Counter[str]:
    """Questions per topic, ignoring case and spacing ("it" and "IT " are one topic),
    named as first seen; questions without a topic are not counted."""
    names: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for t in timings:
        name = " ".join((t.topic or "").split())
        if name:
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


def local_clock(moment: datetime) -> str:
    return as_utc(moment).astimezone(LONDON).strftime("%H:%M")


def _questions(count: int) -> str:
    return f"{count} question" if count == 1 else f"{count} questions"


def report_figures(report: EventReport) -> ReportFigures:
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
        f"{local_clock(minute)} \u2014 {_questions(count)}"
        for minute, count in report.busiest_minutes[:SHOWN_BUSIEST]
    )
    topics = tuple((name, _questions(count)) for name, count in report.top_topics)
    return ReportFigures(rows=rows, busiest=busiest, topics=topics)


# --- Making user text inert in plain text and Markdown -----------------------------------
# These live here because both this module and the digest (which imports it) need them.

_LINE_BREAKS = re.compile(r"\r\n|[\r\n\u2028\u2029\x0b\x0c\x85]")
# Characters that start Markdown inline constructs anywhere in a line: escapes, code,
# emphasis, links and images, tables, strikethrough.
_MD_INLINE = re.compile(r"([\\`*_\[\]()|~])")
# Constructs that only count at the start of a line: headings, lists, setext underlines.
_MD_LINE_START = re.compile(r"^([#+\-=])")
_MD_ORDERED = re.compile(r"^(\d+)([.)])")


def _visible(text: str) -> str:
    """Control characters become spaces; invisible formatting (bidi overrides, zero-width
    spaces) is dropped because it can hide or reorder what a reader sees. The zero-width
    joiner stays: emoji sequences need it."""
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc":
            kept.append(" ")
        elif category != "Cf" or ch == "\u200d":
            kept.append(ch)
    return "".join(kept)


def text_lines(text: str) -> list[str]:
    """Split user text into trimmed visible lines, whatever line endings it used."""
    return [" ".join(_visible(line).split()) for line in _LINE_BREAKS.split(text)]


def paragraphs(text: str) -> list[list[str]]:
    """Blank lines separate paragraphs; other line breaks are kept inside a paragraph."""
    result: list[list[str]] = [[]]
    for line in text_lines(text):
        if line:
            result[-1].append(line)
        elif result[-1]:
            result.append([])
    return [para for para in result if para]


def plain_line(text: str) -> str:
    """One line of plain text: line breaks and control characters become spaces."""
    return " ".join(line for line in text_lines(text) if line)


def _md_escape_line(line: str) -> str:
    escaped = _MD_INLINE.sub(r"\\\1", html.escape(line, quote=False))
    return _MD_ORDERED.sub(r"\1\\\2", _MD_LINE_START.sub(r"\\\1", escaped))


def md_inline(text: str) -> str:
    """User text as one inert line of Markdown.

    Every character that could start a link, image, emphasis, code span or table is
    backslash-escaped, and `&`, `<` and `>` become entities because Markdown renderers pass
    raw HTML straight through. Bare http(s) URLs may still be auto-linked by GitHub-style
    renderers; they are shown as typed, never disguised.
    """
    return _md_escape_line(plain_line(text))


def md_block(text: str) -> str:
    """User text as inert Markdown paragraphs, single line breaks kept as hard breaks."""
    return "\n\n".join(
        "\\\n".join(_md_escape_line(line) for line in para) for para in paragraphs(text)
    )


def render_report(report: EventReport, fmt: Literal["md", "text"]) -> str:
    """The figures on their own, for a Teams message to the host or the event log."""
    figures = report_figures(report)
    if fmt == "md":
        return templates.get_template("report.md.j2").render(figures=figures, safe=md_inline)
    if fmt == "text":
        return templates.get_template("report.txt.j2").render(figures=figures, safe=plain_line)
    raise ValueError(f"unknown report format {fmt!r}")


def _series(report: EventReport, timings: Sequence[QuestionTiming]) -> list[tuple[datetime, int]]:
    """Questions asked in every minute from the first to the last, quiet minutes as zero."""
    if timings:
        counts = Counter(_minute(t.asked_at) for t in timings)
    else:
        counts = Counter({_minute(minute): count for minute, count in report.busiest_minutes})
    if not counts:
        return []
    first, last = min(counts), max(counts)
    minutes = int((last - first).total_seconds() // 60) + 1
    return [
        (first + timedelta(minutes=i), counts.get(first + timedelta(minutes=i), 0))
        for i in range(minutes)
    ]


def _pygal() -> ModuleType:
    """Import pygal on first use, so the figures work where the chart library is absent.

    pygal appends a legacy import hook (for map plugins we do not use) to sys.meta_path.
    On Python 3.11 that hook turns every failed optional import anywhere in the process
    into an ImportWarning, which the test suite treats as an error, so it is taken out.
    """
    import pygal

    sys.meta_path[:] = [
        finder for finder in sys.meta_path if type(finder).__module__.split(".")[0] != "pygal"
    ]
    return pygal


def _chart_style(pygal: ModuleType) -> Any:
    return pygal.style.Style(
        background="#ffffff",
        plot_background="#ffffff",
        foreground="#0b0c0c",
        foreground_strong="#0b0c0c",
        foreground_subtle="#505a5f",
        colors=("#1d70b8",),
        font_family="Arial, Helvetica, sans-serif",
        title_font_size=18,
        label_font_size=12,
        major_label_font_size=12,
    )


def report_chart_svg(report: EventReport, timings: Sequence[QuestionTiming], title: str) -> str:
    """Bar chart of questions asked per minute (Europe/London clock), as standalone SVG text.

    The per-minute counts come from `timings` when given, else from the report. The output
    is deterministic (the chart id is a hash of its content and pygal's dated comment is
    dropped) and carries no script, event handler or outside link, so it can be embedded.
    """
    series = _series(report, timings)
    chart_title = f"Questions per minute: {plain_line(title)}"
    fingerprint = hashlib.sha256(repr((chart_title, series)).encode()).hexdigest()[:16]
    labels = [local_clock(minute) for minute, _ in series]
    pygal = _pygal()
    chart = pygal.Bar(
        style=_chart_style(pygal),
        width=800,
        height=400,
        explicit_size=True,
        title=chart_title,
        show_legend=False,
        js=[],
        disable_xml_declaration=True,
        x_title="Time (UK)",
        y_title="Questions asked",
        x_labels=labels,
        show_minor_x_labels=len(labels) <= 15,
        x_labels_major_every=max(1, -(-len(labels) // 12)),
        min_scale=1,
        max_scale=8,
        print_values=False,
    )
    chart.uuid = f"questions-{fingerprint}"
    chart.add("Questions asked", [count for _, count in series])
    return _scrub_svg(chart.render(is_unicode=True))


def _scrub_svg(svg: str) -> str:
    """Re-serialise pygal's SVG without comments, scripts, handlers or outside links.

    ElementTree's parser drops comments and processing instructions (pygal's comment
    carries today's date; stylesheet instructions would fetch from outside). Names are
    written without namespace prefixes, so the result reads like hand-made SVG and no
    global namespace registration is needed.
    """
    root = ET.fromstring(svg)
    for parent in list(root.iter()):
        for child in list(parent):
            if _local(child.tag).lower() in {"script", "foreignobject"}:
                parent.remove(child)
    for element in root.iter():
        element.tag = _local(element.tag)
        for name, value in list(element.attrib.items()):
            del element.attrib[name]
            local = _local(name)
            if local.lower().startswith("on"):
                continue
            if local == "href" and not value.startswith("#"):
                continue
            element.attrib[local] = value
    root.attrib["xmlns"] = _SVG_NS
    return ET.tostring(root, encoding="unicode")


def _local(name: str) -> str:
    return name.rpartition("}")[2]
