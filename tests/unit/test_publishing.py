"""The published digest: what a colleague reading the staff-news page notices."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from handlers.publishing import (
    DigestQuestion,
    EventDigest,
    PublishedAnswer,
    _clean_html,
    render_digest,
)
from handlers.report import QuestionTiming, event_report

# 11 June 2024 23:30 UTC is already Wednesday 12 June on the UK clock (BST).
OPENED = datetime(2024, 6, 11, 23, 30, tzinfo=UTC)
XSS = (
    "<script>alert(1)</script> and [x](javascript:alert(1)) ![x](http://evil/)"
    " <img src=x onerror=alert(2)>"
)


def answer(text: str = "Yes.", by: str | None = "HR team", minute: int = 20) -> PublishedAnswer:
    return PublishedAnswer(
        text=text, answered_by=by, answered_at=OPENED + timedelta(minutes=minute)
    )


def question(
    ref: str,
    text: str,
    *,
    topic: str | None = "Pay",
    asker: str | None = "Sam Jones",
    minute: int = 0,
    support: int = 0,
    answers: tuple[PublishedAnswer, ...] = (answer(),),
    merged: tuple[str, ...] = (),
) -> DigestQuestion:
    return DigestQuestion(
        ref=ref,
        text=text,
        asker_name=asker,
        topic=topic,
        asked_at=OPENED + timedelta(minutes=minute),
        answers=answers,
        support=support,
        merged_refs=merged,
        source="moderator",
    )


def digest(*questions: DigestQuestion, title: str = "All-staff briefing") -> EventDigest:
    return EventDigest(
        title=title,
        description="Led by our executive directors.",
        opened_at=OPENED,
        closed_at=OPENED + timedelta(hours=1),
        questions=questions,
    )


class Page(HTMLParser):
    """Collects what a browser would build from the HTML: tags, attributes and text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = html
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)

    def texts_of(self, tag: str) -> list[str]:
        """The text inside each (non-nested) element with this tag."""
        pattern = re.compile(rf"<{tag}\b[^>]*>(.*?)</{tag}>", re.DOTALL)
        return [Page(inner).all_text for inner in pattern.findall(self.source)]


page = Page


def order_in(text: str, *needles: str) -> list[int]:
    return [text.index(needle) for needle in needles]


# --- Reads like a staff-news page ---------------------------------------------------------


def test_page_has_title_date_intro_and_heading() -> None:
    d = digest(question("Q-1", "When is pay day?"))

    md = render_digest(d, "md")
    assert md.startswith("# Questions from All-staff briefing\n")
    assert "on Wednesday 12 June 2024" in md  # the UK date, not the UTC one
    assert "## Questions and answers" in md
    assert "Led by our executive directors." in md

    html = page(render_digest(d, "html"))
    assert html.texts_of("h1") == ["Questions from All-staff briefing"]
    assert "Questions and answers" in html.texts_of("h2")
    assert "on Wednesday 12 June 2024" in html.all_text


def test_asked_by_and_answered_by() -> None:
    d = digest(question("Q-1", "When is pay day?", answers=(answer("The 15th.", by="Payroll"),)))

    for out in (render_digest(d, "md"), page(render_digest(d, "html")).all_text):
        assert "Asked by Sam Jones" in out
        assert "Answered by Payroll" in out


def test_answered_by_is_optional() -> None:
    d = digest(question("Q-1", "When is pay day?", answers=(answer("The 15th.", by=None),)))

    assert "Answered by" not in render_digest(d, "md")
    assert "Answered by" not in render_digest(d, "html")


def test_follow_up_answers_come_after_the_first() -> None:
    answers = (answer("First answer.", minute=10), answer("A later update.", by="IT", minute=40))
    d = digest(question("Q-1", "Laptop refresh?", answers=answers))

    for out in (render_digest(d, "md"), page(render_digest(d, "html")).all_text):
        first, follow, later = order_in(out, "First answer.", "Follow-up", "A later update.")
        assert first < follow < later


def test_answer_line_breaks_stay_readable() -> None:
    d = digest(
        question(
            "Q-1",
            "Where do I park?",
            answers=(answer("Car park A.\nCar park B.\n\nAsk reception."),),
        )
    )

    html = render_digest(d, "html")
    assert "<p>Car park A.<br>Car park B.</p>" in html
    assert "<p>Ask reception.</p>" in html
    md = render_digest(d, "md")
    assert "Car park A.\\\nCar park B.\n\nAsk reception." in md  # hard break, then a new paragraph


# --- Grouping and ordering ----------------------------------------------------------------


MIXED = digest(
    question("Q-1", "Something else?", topic=None),
    question("Q-2", "Wellbeing sessions?", topic="Wellbeing"),
    question("Q-3", "Hybrid working policy?", topic="Policies"),
    question("Q-4", "VPN keeps dropping?", topic="it"),
    question("Q-5", "Heating in County Hall?", topic="Buildings"),
    question("Q-6", "Carry over leave?", topic="Leave"),
    question("Q-7", "Pay award date?", topic="Pay"),
    question("Q-8", "Teachers' pension transfer?", topic="pensions and  benefits"),
)
TOPICS_IN_ORDER = ["Pay", "Leave", "Pensions and benefits", "Buildings", "IT", "Policies", "Wellbeing",
                   "Other questions"]


def test_topics_in_a_fixed_order_then_others_then_other_questions() -> None:
    md = render_digest(MIXED, "md")
    headings = [line[4:] for line in md.splitlines() if line.startswith("### ")]
    assert headings == TOPICS_IN_ORDER

    assert page(render_digest(MIXED, "html")).texts_of("h3") == TOPICS_IN_ORDER


def test_most_supported_first_then_earliest() -> None:
    d = digest(
        question("Q-1", "Early, little support?", minute=1, support=1),
        question("Q-2", "Late, most support?", minute=30, support=9),
        question("Q-3", "Earliest, little support?", minute=0, support=1),
    )
    expected = ["Late, most support?", "Earliest, little support?", "Early, little support?"]

    for out in (render_digest(d, "md"), render_digest(d, "html")):
        positions = order_in(out, *expected)
        assert positions == sorted(positions)


def test_support_is_shown() -> None:
    d = digest(question("Q-1", "Pay award?", support=12), question("Q-2", "Pay slips?", support=1))

    out = page(render_digest(d, "html")).all_text
    assert "12 colleagues also asked this" in out
    assert "1 colleague also asked this" in out


# --- Anonymity, duplicates, unanswered ----------------------------------------------------


def test_anonymous_question_never_shows_a_name() -> None:
    d = digest(
        question("Q-10", "Is my team being restructured?", asker=None, merged=("Q-11",)),
        # The duplicate merged into it came from a named colleague; it must not surface.
        question("Q-11", "Restructure in my team?", asker="Pat Secret"),
        question("Q-12", "Are we restructuring?", asker="   "),
    )

    md = render_digest(d, "md")
    html = render_digest(d, "html")
    for out in (md, html, page(html).all_text):
        assert "Pat Secret" not in out
        assert "Pat" not in out
    asked = [t for t in page(html).texts_of("small") if t.startswith("Asked by")]
    assert len(asked) == 2
    assert all(t.startswith("Asked by A colleague") for t in asked)
    assert md.count("Asked by A colleague") == 2


def test_merged_duplicates_appear_once_with_their_refs() -> None:
    d = digest(
        question("Q-7", "When is the pay award paid? (duplicate)"),
        question("Q-1", "When will the pay award be paid?", merged=("Q-7", "Q-9"), support=4),
        question("Q-1", "When will the pay award be paid?", merged=("Q-7", "Q-9"), support=4),
    )

    for out in (render_digest(d, "md"), page(render_digest(d, "html")).all_text):
        assert out.count("When will the pay award be paid?") == 1
        assert "(duplicate)" not in out
        assert "also asked as Q-7, Q-9" in out
        assert out.count("Q-7") == 1


def test_unanswered_questions_are_left_out() -> None:
    d = digest(
        question("Q-1", "Answered one?"),
        question("Q-2", "Never answered?", answers=()),
        question("Q-3", "Blank answer?", answers=(answer("   "),)),
    )

    for out in (render_digest(d, "md"), render_digest(d, "html")):
        assert "Answered one?" in out
        assert "Never answered?" not in out
        assert "Blank answer?" not in out


def test_an_event_with_no_answers_says_so() -> None:
    d = digest(question("Q-1", "Anyone?", answers=()))

    assert "No questions have been answered yet." in render_digest(d, "md")
    assert "No questions have been answered yet." in render_digest(d, "html")


# --- Output safety ------------------------------------------------------------------------


HOSTILE = digest(
    question(
        "Q-1",
        XSS,
        asker='<b onmouseover="alert(3)">Eve</b>',
        topic="<i>IT</i>",
        answers=(answer(f"Try {XSS}", by="[admin](javascript:alert(4))"),),
    ),
    title="Briefing <script>alert(5)</script>",
)


def test_html_is_inert() -> None:
    html = render_digest(HOSTILE, "html")
    parsed = page(html)

    tags = [tag for tag, _ in parsed.tags]
    assert "script" not in tags
    assert "a" not in tags  # user text never becomes a link
    assert "b" not in tags and "i" not in tags
    assert [attrs for tag, attrs in parsed.tags if tag == "img"] == []
    for _, attrs in parsed.tags:
        for name, value in attrs.items():
            assert not name.startswith("on")
            assert "javascript:" not in (value or "")
    assert "<script" not in html
    # ...and the colleague's words are still there, as text.
    assert "<script>alert(1)</script> and [x](javascript:alert(1))" in parsed.all_text
    assert "Questions from Briefing <script>alert(5)</script>" in parsed.texts_of("h1")


LINK_FORM = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\s*\(")  # [text]( with neither bracket escaped


def test_markdown_is_inert() -> None:
    md = render_digest(HOSTILE, "md")

    assert "<" not in md and ">" not in md  # no raw HTML at all: &lt; / &gt; throughout
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in md
    assert not LINK_FORM.search(md)
    assert "\\[x\\]\\(javascript:alert\\(1\\)\\)" in md
    assert "!\\[x\\]\\(http://evil/\\)" in md
    assert "### &lt;i&gt;IT&lt;/i&gt;" in md


@pytest.mark.parametrize(
    ("typed", "escaped"),
    [
        ("*bold* _it_ `code` ~~gone~~ a|b", r"\*bold\* \_it\_ \`code\` \~\~gone\~\~ a\|b"),
        ("# not a heading", r"\# not a heading"),
        ("1. not a list", r"1\. not a list"),
        ("- not a bullet", r"\- not a bullet"),
        ("back\\slash & <tag>", r"back\\slash &amp; &lt;tag&gt;"),
    ],
)
def test_markdown_control_characters_are_escaped(typed: str, escaped: str) -> None:
    md = render_digest(digest(question("Q-1", "Fine?", answers=(answer(typed),))), "md")

    assert f"\n{escaped}\n" in md


def test_multiline_question_cannot_break_out_of_its_paragraph() -> None:
    d = digest(question("Q-1", "First line\n---\n\n## Injected heading\n    code?"))
    md = render_digest(d, "md")

    assert "\n## Injected" not in md
    assert "**First line\\\n\\---\\\n\\## Injected heading\\\ncode?**" in md


def test_invisible_and_control_characters_are_removed() -> None:
    d = digest(question("Q-1", "Safe\u202e?txt.exe\x07", asker="Sam\u200bJones"))

    for out in (render_digest(d, "md"), render_digest(d, "html")):
        assert "\u202e" not in out and "\x07" not in out and "\u200b" not in out
        assert "SamJones" in out


def test_html_cleaner_keeps_data_urls_only_for_the_chart_image() -> None:
    cleaned = _clean_html(
        '<img src="data:image/svg+xml;base64,PHN2Zy8+" alt="chart">'
        '<img src="data:text/html;base64,PHNjcmlwdD4=" alt="other">'
        '<a href="data:text/html,x">link</a><a href="javascript:alert(1)">js</a>'
    )

    assert 'src="data:image/svg+xml;base64,PHN2Zy8+"' in cleaned
    assert "data:text/html" not in cleaned
    assert "javascript:" not in cleaned


# --- With the event figures ---------------------------------------------------------------


TIMINGS = [
    QuestionTiming(
        OPENED + timedelta(minutes=m),
        OPENED + timedelta(minutes=m + 4, seconds=30),
        "moderator",
        "Pay",
    )
    for m in (0, 1, 1, 3)
]


def test_markdown_digest_includes_the_figures() -> None:
    d = digest(question("Q-1", "When is pay day?"))
    md = render_digest(d, "md", report=event_report(TIMINGS))

    figures = md[md.index("## The event in figures") :]
    assert "**Questions asked:** 4" in figures
    assert "4 min 30 s" in figures
    assert "00:31 — 2 questions" in figures  # BST
    assert "data:" not in md  # no chart in Markdown


def test_html_digest_embeds_the_chart_as_an_image() -> None:
    d = digest(question("Q-1", "When is pay day?"), title="Briefing <script>alert(5)</script>")
    html = render_digest(d, "html", report=event_report(TIMINGS))
    parsed = page(html)

    assert "The event in figures" in parsed.texts_of("h2")
    assert "Questions asked: 4" in parsed.all_text
    images = [attrs for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) == 1
    src = images[0]["src"] or ""
    assert src.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(src.split(",", 1)[1]).decode()
    root = ET.fromstring(svg)
    assert root.find("{http://www.w3.org/2000/svg}title").text.endswith(
        "Briefing <script>alert(5)</script>"
    )
    assert "<script" not in svg
    assert images[0]["alt"].startswith("Bar chart of the questions asked")


def test_same_input_same_output() -> None:
    d = digest(question("Q-1", "When is pay day?"))
    report = event_report(TIMINGS)

    assert render_digest(d, "html", report=report) == render_digest(d, "html", report=report)


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        render_digest(digest(), "pdf")  # type: ignore[arg-type]


def test_records_are_frozen() -> None:
    q = question("Q-1", "Pay?")
    with pytest.raises(AttributeError):
        q.text = "changed"  # type: ignore[misc]
    assert replace(q, support=3).support == 3
