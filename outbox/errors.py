"""Errors a job raises to tell the outbox worker what to do next."""

from __future__ import annotations


class RetryLater(Exception):
    """A transient failure (429, 503, connection reset): try again, not before `retry_after` s."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentFailure(Exception):
    """The job can never succeed (4xx other than 429, bad payload): mark it failed, do not retry."""
