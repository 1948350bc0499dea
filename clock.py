"""What time it is, read from one object: the product never asks the system for the time itself.

Every part that reads the time (timestamps written to the database, when an outbox job is
due, the board's coalescing interval, reminders, retention cut-offs, Retry-After dates) is
given a `Clock`. Production uses `SYSTEM_CLOCK`; tests give the app a clock they move forward,
so "a day later" or "after the board's 2-second interval" costs no sleeping.

Waits that really sleep keep the system's time, since a test's jump must not cut them short:
SQLite's lock wait (store.sqlite_inline, store.db) and the Graph send pacer (mail.graph).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back: for waits and deadlines."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
