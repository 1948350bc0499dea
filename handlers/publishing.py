"""The after-event digest: answered questions, grouped by topic, ready to publish.

Pure functions over plain records; the lead reads the store, leaves out dismissed and
private questions, and calls `render_digest`. Everything a colleague or moderator typed is
treated as untrusted text:

- Markdown: user text is escaped (`md_inline` / `md_block` in handlers.markdown), so links,
  images, emphasis and raw HTML come out as the characters that were typed.
- HTML: the template autoescapes user text, and the whole rendered fragment is cleaned
  again with nh3 against a short allow-list of the tags the template uses. The chart is
  embedded as `<img src="data:image/svg+xml;base64,...">`: browsers run no script and fetch
  nothing inside an SVG loaded as an image, and the nh3 pass keeps a `data:` URL only in
  that one place.

The HTML is a fragment (an <article>), meant to be pasted into an intranet news page.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

import nh3

from handlers.chart import report_chart_svg
from handlers.clock import DEFAULT_ZONE, as_utc
from handlers.markdown import md_block, md_inline, paragraphs, plain_line
from handlers.report import OTHER_TOPIC, EventReport, report_figures
from handlers.templating import templates

ANONYMOUS = "A colleague"
# The bundled FAQ's topics in the order a staff-news reader expects: money and time off first,
# then the workplace. Other topics follow alphabetically, and OTHER_TOPIC comes last.
TOPIC_ORDER = ("Pay", "Leave", "Pensions and benefits", "Buildings", "IT", "Learning and careers",
               "Policies")


@dataclass(frozen=True)
class PublishedAnswer:
    text: str
    answered_by: str | None
    answered_at: datetime


@dataclass(frozen=True)
class DigestQuestion:
    ref: str
    text: str
    asker_name: str | None
    topic: str | None
    asked_at: datetime
    answers: tuple[PublishedAnswer, ...]
    support: int
    merged_refs: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class EventDigest:
    title: str
    description: str | None
    opened_at: datetime
    closed_at: datetime | None
    questions: tuple[DigestQuestion, ...]


@dataclass(frozen=True)
class _AnswerView:
    text: str
    paragraphs: list[list[str]]
    answered_by: str | None
    follow_up: bool


@dataclass(frozen=True)
class _QuestionView:
    ref: str
    anchor: str
    lines: list[str]
    asked_by: str
    also_asked_as: tuple[str, ...]
    support: int
    answers: tuple[_AnswerView, ...]


@dataclass(frozen=True)
class _Section:
    topic: str
    questions: tuple[_QuestionView, ...]


def render_digest(
    digest: EventDigest, fmt: Literal["md", "html"], *, report: EventReport | None = None,
    zone: ZoneInfo = DEFAULT_ZONE,
) -> str:
    """Render the digest as Markdown or as a cleaned HTML fragment.

    With `report`, the event figures follow the questions (and, in HTML, the chart).
    """
    sections = _sections(digest.questions)
    context = {
        "title": plain_line(digest.title),
        "description": digest.description or "",
        "description_paragraphs": paragraphs(digest.description or ""),
        "when": _when(digest, zone),
        "sections": sections,
        "figures": report_figures(report, zone) if report is not None else None,
    }
    if fmt == "md":
        # `safe` is the escaper the shared report.md.j2 include uses for topic names.
        return templates.get_template("digest.md.j2").render(
            **context, md=md_inline, md_block=md_block, md_lines=_md_lines, safe=md_inline
        )
    if fmt == "html":
        chart = None
        if report is not None and report.busiest_minutes:
            svg = report_chart_svg(report, (), digest.title, zone)
            chart = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
        html = templates.get_template("digest.html.j2").render(
            **context, chart=chart, safe=plain_line
        )
        return _clean_html(html)
    raise ValueError(f"unknown digest format {fmt!r}")


def _md_lines(lines: list[str]) -> str:
    """Escaped lines joined by Markdown hard breaks, so a question stays one bold block."""
    return "\\\n".join(md_inline(line) for line in lines)


def _sections(questions: tuple[DigestQuestion, ...]) -> tuple[_Section, ...]:
    """Answered questions, each shown once, grouped by topic in reading order."""
    by_topic: dict[str, list[DigestQuestion]] = {}
    for question in _shown_once(questions):
        by_topic.setdefault(_topic_label(question.topic), []).append(question)
    return tuple(
        _Section(
            topic=topic,
            questions=tuple(
                _question_view(q)
                for q in sorted(
                    by_topic[topic], key=lambda q: (-q.support, as_utc(q.asked_at), q.ref)
                )
            ),
        )
        for topic in sorted(by_topic, key=_topic_rank)
    )


def _shown_once(questions: tuple[DigestQuestion, ...]) -> list[DigestQuestion]:
    """Drop unanswered questions, and any question already shown as another's duplicate.

    Questions that absorbed duplicates are considered first, so when both a question and
    its merged duplicate arrive, the merged-into one is kept with its "also asked as" refs.
    """
    answered = [q for q in questions if any(a.text.strip() for a in q.answers)]
    answered.sort(key=lambda q: (not q.merged_refs, -q.support, as_utc(q.asked_at), q.ref))
    seen: set[str] = set()
    kept = []
    for question in answered:
        if question.ref in seen:
            continue
        seen.add(question.ref)
        seen.update(question.merged_refs)
        kept.append(question)
    return kept


def _topic_label(topic: str | None) -> str:
    name = plain_line(topic or "")
    for known in (*TOPIC_ORDER, OTHER_TOPIC):
        if name.casefold() == known.casefold():
            return known
    return name or OTHER_TOPIC


def _topic_rank(topic: str) -> tuple[int, str]:
    if topic in TOPIC_ORDER:
        return (TOPIC_ORDER.index(topic), "")
    if topic == OTHER_TOPIC:
        return (len(TOPIC_ORDER) + 1, "")
    return (len(TOPIC_ORDER), topic.casefold())


def _question_view(question: DigestQuestion) -> _QuestionView:
    asker = plain_line(question.asker_name or "")
    answers = [a for a in question.answers if a.text.strip()]
    return _QuestionView(
        ref=question.ref,
        anchor="".join(ch if ch.isalnum() else "-" for ch in question.ref.lower()),
        lines=[line for para in paragraphs(question.text) for line in para],
        asked_by=asker or ANONYMOUS,
        also_asked_as=tuple(
            dict.fromkeys(ref for ref in question.merged_refs if ref != question.ref)
        ),
        support=max(0, question.support),
        answers=tuple(
            _AnswerView(
                text=answer.text,
                paragraphs=paragraphs(answer.text),
                answered_by=plain_line(answer.answered_by or "") or None,
                follow_up=index > 0,
            )
            for index, answer in enumerate(answers)
        ),
    )


def _long_date(moment: datetime, zone: ZoneInfo) -> str:
    local = as_utc(moment).astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y}"


def _when(digest: EventDigest, zone: ZoneInfo) -> str:
    """'on Tuesday 5 December 2023', or a range when the event ran past midnight (local time)."""
    opened = _long_date(digest.opened_at, zone)
    closed = _long_date(digest.closed_at, zone) if digest.closed_at else opened
    return f"on {opened}" if closed == opened else f"from {opened} to {closed}"


# Every tag and attribute the digest template writes; anything else is stripped.
_HTML_TAGS = {
    *("article", "section", "h1", "h2", "h3", "p", "br", "strong", "em", "small"),
    *("ul", "li", "figure", "figcaption", "img"),
}
_HTML_ATTRIBUTES = {
    "*": {"class"},
    "article": {"id"},
    "img": {"src", "alt", "width", "height"},
}
_CHART_URL_PREFIX = "data:image/svg+xml;base64,"


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Allow a data: URL only as the chart image; nh3 checks every other URL's scheme."""
    if attribute in {"src", "href"} and value.lower().startswith("data:"):
        if tag == "img" and attribute == "src" and value.startswith(_CHART_URL_PREFIX):
            return value
        return None
    return value


def _clean_html(fragment: str) -> str:
    return nh3.clean(
        fragment,
        tags=_HTML_TAGS,
        attributes=_HTML_ATTRIBUTES,
        url_schemes={"https", "data"},
        attribute_filter=_keep_attribute,
        strip_comments=True,
        link_rel="noopener noreferrer",
    )
