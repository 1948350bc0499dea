"""Retry-After, as the Bot Connector and Graph send it: the outbox waits that long and no
longer, and a header it cannot read is treated as none (the outbox's own back-off applies)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from errors import parse_retry_after

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),  # what the local connector sends to keep tests fast
        ("0", 0.0),
        ("-5", 0.0),  # never a wait into the past
        ("Mon, 05 Jan 2026 09:31:30 GMT", 90.0),
        ("Mon, 05 Jan 2026 09:31:30 -0000", 90.0),  # a date with no known zone: UTC
        ("Mon, 05 Jan 2026 10:31:30 +0100", 90.0),
        ("Mon, 05 Jan 2026 09:00:00 GMT", 0.0),  # already passed: at once
    ],
)
def test_both_forms_give_the_seconds_to_wait(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf", "Mon, 99 Foo 2026"])
def test_a_header_that_says_nothing_usable_is_no_header(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None
