"""The product's exceptions: one root, and what a caller needs to know to decide what to do.

`Refused`: a request turned down before anything changed (bad input, or not allowed); its
message is written for the person who asked. `Transient` and `Permanent`: something sent or
read failed; the outbox worker retries a `Transient` (not before its `retry_after`) and marks
a job that raised `Permanent` failed at once. The Teams and Graph senders turn the failures
they recognise (a status, a dropped connection, a refused token) into one or the other;
anything else is unexpected, and tried at most OUTBOX_MAX_ATTEMPTS times.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class ProductError(Exception):
    """Every error the product raises on purpose."""


class Refused(ProductError):
    """Input that cannot be acted on, or an action the sender may not take; nothing changed."""


class Transient(ProductError):
    """A failure that may pass (429, 503, a dropped connection): try again, not before
    `retry_after` seconds when the other side said when."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """A `Retry-After` header in seconds (for Transient.retry_after): either seconds or an HTTP
    date, counted from `now`; None when absent or unreadable, as if the other side said nothing."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": the date is UTC, its source unknown
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Permanent(ProductError):
    """A failure that trying again will not mend (4xx other than 429, a bad payload)."""
