"""The product reads the time only through its `Clock`: a test that moves the app's clock on
moves every time the app reads, and nothing measures time the test cannot move."""

from __future__ import annotations

import re

from tests.support.process import ROOT

PRODUCT = ("app.py", "cli.py", "errors.py", "bot", "config", "faq", "handlers", "mail", "ops", "outbox", "store")
READS_THE_SYSTEM_TIME = re.compile(
    r"\b(?:datetime\.(?:now|utcnow|today)|date\.today|time\.(?:time|time_ns|monotonic|perf_counter))\("
)
# Waits that really sleep for the time they measure: a test's jump must not cut them short.
REAL_WAITS = {
    "store/sqlite_inline.py": "SQLite's lock wait",
    "mail/graph.py": "the Graph send pacer",
}


def test_no_product_module_reads_the_system_time_but_the_clock() -> None:
    found: dict[str, list[str]] = {}
    for entry in PRODUCT:
        paths = [ROOT / entry] if entry.endswith(".py") else sorted((ROOT / entry).rglob("*.py"))
        for path in paths:
            name = path.relative_to(ROOT).as_posix()
            reads = [line.strip() for line in path.read_text().splitlines() if READS_THE_SYSTEM_TIME.search(line)]
            if reads and name not in REAL_WAITS:
                found[name] = reads
    assert found == {}, "read the time from a Clock (clock.py: Deps.clock, Store.clock), not the system"
