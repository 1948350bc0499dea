"""What an operator does with jobs that gave up: list them, and put them back once the fault
that stopped them has ended (`cli.py outbox failed`, `cli.py outbox retry`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from store.outbox import FAILED
from store.records import FailedJob
from store.store import Store

# What an error message may carry that says who someone is, should a library have put it there:
# an email address, an Entra object id or a Teams/Bot Framework id (29:..., a:..., 19:...@thread).
_PERSONAL = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|\b(?:19|2[89]|8|a|f):[\w.@;=:-]{6,}",
    re.IGNORECASE,
)
MAX_ERROR_CHARS = 200


class NotRetryable(ValueError):
    """Some of the jobs asked for are not failed jobs; nothing was changed."""


def shown_error(error: str | None) -> str:
    """The last error on one line, cut short, without addresses or ids."""
    if not error:
        return "-"
    line = " ".join(_PERSONAL.sub("<id>", error).split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


async def failed_jobs(store: Store) -> list[FailedJob]:
    """Every failed job, oldest first, its error as `shown_error` shows it."""
    async with store.unit() as unit:
        jobs = await unit.outbox.failed_jobs()
    return [replace(job, last_error=shown_error(job.last_error)) for job in jobs]


async def retry_failed(store: Store, job_ids: Sequence[int] | None) -> list[int]:
    """Re-queue these failed jobs (all of them with None) to run at once with a fresh retry
    budget; the running bot's worker takes them at its next poll. If any id asked for is not
    a failed job, nothing changes (`NotRetryable` says which and why)."""
    async with store.unit() as unit:
        if job_ids is not None:
            statuses = await unit.outbox.statuses(job_ids)
            wrong = [f"{job} ({statuses.get(job, 'no such job')})" for job in job_ids if statuses.get(job) != FAILED]
            if wrong:
                raise NotRetryable(f"not failed jobs: {', '.join(wrong)}; nothing was changed")
        return await unit.outbox.requeue_failed(job_ids)
