"""When to try a failed job again, and when to stop.

A transient failure (throttling, a 5xx, a timeout, a dropped connection, a refused token:
`Transient`) is retried for as long as the job is younger than `give_up_after`
(OUTBOX_GIVE_UP_AFTER_HOURS): an outage that ends, however many attempts it took, delays the
reply but does not drop it. An error the job did not expect (a bug, an answer nobody planned
for) looks permanent, so it is tried only `max_attempts` times (OUTBOX_MAX_ATTEMPTS).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 1.0
    max_seconds: float = 300.0
    max_attempts: int = 12
    give_up_after: timedelta = timedelta(hours=24)

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Seconds to wait after the `attempts`-th failure.

        Retry-After is a floor, never shortened; a little jitter on top stops every throttled job
        from coming back in the same instant. Without it: "full jitter" exponential backoff,
        capped at `max_seconds`, so a job is tried again within that long of an outage's end.
        """
        if retry_after is not None:
            return min(retry_after, self.max_seconds * 4) + random.uniform(0, 0.1 * retry_after + 0.05)
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(max(attempts - 1, 0), 32))
        return random.uniform(ceiling / 2, ceiling)

    def out_of_time(self, queued_at: datetime, next_try: datetime) -> bool:
        """Would a job queued at `queued_at` be past its budget by its next try?"""
        return next_try - queued_at > self.give_up_after

    def exhausted(self, attempts: int) -> bool:
        """Has a job whose error looks permanent been tried often enough?"""
        return attempts >= self.max_attempts
