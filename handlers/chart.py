"""The questions-per-minute bar chart of an event, as standalone SVG text.

Drawn with pygal, which is imported on first use only (the figures work where it is absent).
This is the only module that imports pygal, and the only one in the product that edits
`sys.meta_path`: importing pygal appends its `PluginImportFixer` (a legacy `find_module`
hook for pygal map plugins, which we do not use) to `sys.meta_path`. On Python 3.11 every
import that reaches that hook, i.e. every failed optional import anywhere in the process,
then raises an ImportWarning, and the test suite turns warnings into errors. `_pygal` takes
out pygal's own finders, and nothing else, right after importing it.
"""

from __future__ import annotations

import hashlib
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from handlers.clock import DEFAULT_ZONE, clock_time
from handlers.markdown import plain_line
from handlers.report import EventReport, QuestionTiming, utc_minute

_SVG_NS = "http://www.w3.org/2000/svg"


def _series(report: EventReport, timings: Sequence[QuestionTiming]) -> list[tuple[datetime, int]]:
    """Questions asked in every minute from the first to the last, quiet minutes as zero."""
    if timings:
        counts = Counter(utc_minute(t.asked_at) for t in timings)
    else:
        counts = Counter({utc_minute(minute): count for minute, count in report.busiest_minutes})
    if not counts:
        return []
    first, last = min(counts), max(counts)
    minutes = int((last - first).total_seconds() // 60) + 1
    return [
        (first + timedelta(minutes=i), counts.get(first + timedelta(minutes=i), 0))
        for i in range(minutes)
    ]


def _pygal() -> ModuleType:
    """Import pygal on first use and take its import hook back out (see the module docstring)."""
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


def report_chart_svg(report: EventReport, timings: Sequence[QuestionTiming], title: str,
                     zone: ZoneInfo = DEFAULT_ZONE) -> str:
    """Bar chart of questions asked per minute (the organisation's clock), as standalone SVG text.

    The per-minute counts come from `timings` when given, else from the report. The output
    is deterministic (the chart id is a hash of its content and pygal's dated comment is
    dropped) and carries no script, event handler or outside link, so it can be embedded.
    """
    series = _series(report, timings)
    chart_title = f"Questions per minute: {plain_line(title)}"
    fingerprint = hashlib.sha256(repr((chart_title, series)).encode()).hexdigest()[:16]
    labels = [clock_time(minute, zone) for minute, _ in series]
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
        x_title=f"Time ({zone.key})",
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
