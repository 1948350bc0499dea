"""A clock a test moves forward, given to the app in place of the system clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class ShiftedClock:
    """The system clock plus however far the test has moved it on.

    Real time still passes underneath (the app's timeouts and polls keep working); `advance`
    jumps, so whatever waits for a moment (a job due later, a lease, a token's refresh time)
    is due at once, without the test sleeping until then."""

    def __init__(self) -> None:
        self._shift = 0.0

    def advance(self, seconds: float) -> None:
        self._shift += seconds

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._shift)

    def monotonic(self) -> float:
        return time.monotonic() + self._shift
