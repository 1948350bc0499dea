"""The event figures a host reads after an event, and the questions-per-minute chart."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from handlers.chart import report_chart_svg
from handlers.report import (
    EventReport,
    QuestionTiming,
    event_report,
    human_duration,
    render_report,
)

SVG = "{http://www.w3.org/2000/svg}"
# 12 June 2024: British Summer Time, so 13:03 UTC is 14:03 on the clock colleagues saw.
START = datetime(2024, 6, 12, 13, 0, tzinfo=UTC)


def at(minute: int, second: int = 0) -> datetime:
    return START + timedelta(minutes=minute, seconds=second)


def timing(asked: datetime, outcome: str, wait: float | None = None, topic: str | None = None):
    answered = asked + timedelta(seconds=wait) if wait is not None else None
    return QuestionTiming(asked_at=asked, answered_at=answered, outcome=outcome, topic=topic)


# Ten questions: 3 FAQ answers, 4 moderator answers (waits 1, 4, 5 and 10 minutes),
# 2 dismissed, 1 waiting. Four asked in 13:03 UTC, two in 13:01, one each in 13:00, 13:02,
# 13:05 and 13:07.
TEN = (
    timing(at(3, 5), "moderator", 60, "Pay"),
    timing(at(3, 10), "moderator", 240, "Pay"),
    timing(at(3, 20), "faq", 1, "Pay"),
    timing(at(3, 50), "moderator", 600, "Leave"),
    timing(at(1, 0), "faq", 1, "Leave"),
    timing(at(1, 30), "dismissed", None, "Pay"),
    timing(at(0, 10), "moderator", 300, "Leave"),
    timing(at(2, 0), "faq", 0.5, "IT"),
    timing(at(5, 0), "dismissed", None, None),
    timing(at(7, 59), "waiting", None, None),
)


def test_counts_every_outcome() -> None:
    report = event_report(TEN)

    assert (report.asked, report.answered_faq, report.answered_moderators) == (10, 3, 4)
    assert (report.dismissed, report.waiting) == (2, 1)


def test_median_is_over_moderator_answers_only() -> None:
    # Waits of 60, 240, 300 and 600 s: the median is 270 s. The near-instant FAQ answers
    # would pull it down to about two minutes if they counted.
    assert event_report(TEN).median_seconds_to_answer == 270.0


def test_no_moderator_answers_means_no_median() -> None:
    report = event_report([timing(at(0), "faq", 1), timing(at(1), "waiting")])

    assert report.median_seconds_to_answer is None
    assert "no moderator answers yet" in render_report(report, "text")


def test_busiest_minutes_are_by_minute_asked_busiest_first() -> None:
    busiest = event_report(TEN).busiest_minutes

    assert busiest[:3] == ((at(3), 4), (at(1), 2), (at(0), 1))
    assert sum(count for _, count in busiest) == 10


def test_every_question_counts_under_its_topic_and_the_rest_under_other_questions() -> None:
    report = event_report(TEN)
    assert report.topics == (("Pay", 4), ("Leave", 3), ("IT", 1), ("Other questions", 2))
    assert sum(count for _, count in report.topics) == report.asked
    text = render_report(report, "text")
    assert "Questions by topic:\n  Pay — 4 questions\n  Leave — 3 questions\n  IT — 1 question\n" \
        "  Other questions — 2 questions" in text


def test_every_topic_is_counted_not_only_the_top_few() -> None:
    topics = [f"Topic {n}" for n in range(8)]
    report = event_report([timing(at(0), "faq", 1, topic) for topic in [*topics, "other QUESTIONS"]])
    assert [name for name, _ in report.topics] == [*topics, "Other questions"]


def test_topics_differing_only_in_case_are_one_topic() -> None:
    report = event_report([timing(at(0), "waiting", topic=t) for t in ("IT", "it ", " Pay")])

    assert report.topics == (("IT", 2), ("Pay", 1))


def test_naive_times_are_taken_as_utc() -> None:
    naive = [QuestionTiming(at(3).replace(tzinfo=None), None, "waiting", None)]

    assert event_report(naive).busiest_minutes == ((at(3), 1),)


def test_text_report_reads_as_the_host_expects() -> None:
    text = render_report(event_report(TEN), "text")

    for line in (
        "Questions asked: 10",
        "Answered from the FAQ: 3",
        "Answered by moderators: 4",
        "Dismissed: 2",
        "Still waiting: 1",
        "Median time for a moderator to answer: 4 min 30 s",
        "14:03 — 4 questions",
        "14:01 — 2 questions",
        "14:00 — 1 question",
        "Pay — 4 questions",
    ):
        assert line in text
    assert "14:02" not in text  # only the three busiest minutes are listed


def test_winter_events_are_shown_in_gmt() -> None:
    winter = datetime(2024, 1, 10, 13, 3, tzinfo=UTC)
    text = render_report(event_report([QuestionTiming(winter, None, "waiting", None)]), "text")

    assert "13:03 — 1 question" in text


def test_markdown_report_escapes_topic_names() -> None:
    report = EventReport(
        asked=1,
        answered_faq=0,
        answered_moderators=0,
        dismissed=0,
        waiting=1,
        median_seconds_to_answer=None,
        busiest_minutes=((at(0), 1),),
        topics=(("[x](javascript:alert(1)) <b>", 1),),
    )
    md = render_report(report, "md")

    assert "- **Questions asked:** 1" in md
    assert r"\[x\]\(javascript:alert\(1\)\) &lt;b&gt; — 1 question" in md
    assert "](" not in md and "<b>" not in md


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (59.6, "1 min"),
        (120, "2 min"),
        (270, "4 min 30 s"),
        (3900, "1 h 5 min"),
        (7200, "2 h"),
    ],
)
def test_human_duration(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        render_report(event_report(TEN), "pdf")  # type: ignore[arg-type]


TITLE = 'All-staff <script>alert(1)</script> & "you"'


def test_chart_is_valid_svg_with_the_title_escaped() -> None:
    svg = report_chart_svg(event_report(TEN), TEN, TITLE)
    root = ET.fromstring(svg)  # raises if the SVG is not well-formed

    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == f"Questions per minute: {TITLE}"
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in svg
    assert "<script" not in svg


def test_chart_has_a_bar_for_every_minute_of_the_event_on_the_uk_clock() -> None:
    root = ET.fromstring(report_chart_svg(event_report(TEN), TEN, "Event"))

    bars = [r for r in root.iter(f"{SVG}rect") if "reactive" in r.get("class", "")]
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert len(bars) == 8  # 13:00 to 13:07 UTC, quiet minutes included
    assert [f"14:0{m}" for m in range(8)] == [label for label in labels if label.startswith("14:")]


def test_chart_is_safe_to_embed() -> None:
    root = ET.fromstring(report_chart_svg(event_report(TEN), TEN, TITLE))

    for element in root.iter():
        assert element.tag.rpartition("}")[2].lower() not in {"script", "foreignobject"}
        for name, value in element.attrib.items():
            assert not name.rpartition("}")[2].lower().startswith("on")
            if name.endswith("href"):
                assert value.startswith("#")


def test_chart_is_deterministic() -> None:
    report = event_report(TEN)

    assert report_chart_svg(report, TEN, TITLE) == report_chart_svg(report, TEN, TITLE)
    # Without timings the chart is drawn from the report's minute counts, identically.
    assert report_chart_svg(report, (), TITLE) == report_chart_svg(report, TEN, TITLE)


def test_chart_of_an_empty_event_is_still_valid_svg() -> None:
    root = ET.fromstring(report_chart_svg(event_report([]), [], "Quiet event"))

    assert root.tag == f"{SVG}svg"
