"""Retention: purge what is older than the policy, now (`cli.py purge`) or hourly in the app.

Several instances may run the job at once: each batch is one transaction that first takes the
purge lock, and an instance that finds it taken leaves the work to the one holding it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from store.db import truncate_wal
from store.retention import no_rows
from store.store import Store

BATCH = 500
MAIL_FILES = "mail files"  # the `.eml` transport's files, counted beside the tables


class ExpiringMail(Protocol):
    """Mail kept outside the database by the bot itself (the `.eml` transport's folder)."""

    async def expire(self, before: datetime, *, dry_run: bool = False) -> int: ...


@dataclass(frozen=True)
class RetentionPolicy:
    """How long personal data (`days`) and the moderators' and hosts' audit log are kept."""

    days: int
    audit_days: int

    def __post_init__(self) -> None:
        if self.days < 1 or self.audit_days < 1:
            raise ValueError("retention periods are whole days, at least 1")

    def cutoffs(self, now: datetime) -> tuple[datetime, datetime]:
        return now - timedelta(days=self.days), now - timedelta(days=self.audit_days)


async def purge_expired(
    store: Store,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    mail: ExpiringMail | None = None,
) -> dict[str, int]:
    """Rows removed per table (or, with `dry_run`, rows that would be), and with `mail`, the
    mail files past the same period. After removing rows, SQLite's write-ahead log, which
    still holds the pages as they were, is emptied (a busy log is emptied by the next run)."""
    cutoff, audit_cutoff = policy.cutoffs(store.clock.now())
    counts = await _purge_rows(store, cutoff, audit_cutoff, dry_run=dry_run)
    if mail is not None:
        counts[MAIL_FILES] = await mail.expire(cutoff, dry_run=dry_run)
    if not dry_run and any(count for table, count in counts.items() if table != MAIL_FILES):
        await truncate_wal(store.engine)
    return counts


async def _purge_rows(store: Store, cutoff: datetime, audit_cutoff: datetime, *, dry_run: bool) -> dict[str, int]:
    if dry_run:
        async with store.unit() as unit:
            return await unit.retention.count_expired(cutoff, audit_cutoff)
    totals = no_rows()
    while True:
        async with store.unit() as unit:
            if not await unit.retention.lock():
                return totals  # another instance is purging right now
            removed = await unit.retention.purge_questions(cutoff, limit=BATCH)
        _add(totals, removed)
        if removed["questions"] < BATCH:
            break
    async with store.unit() as unit:
        if await unit.retention.lock():
            _add(totals, await unit.retention.purge_rest(cutoff, audit_cutoff))
    return totals


def _add(totals: dict[str, int], more: dict[str, int]) -> None:
    for table, count in more.items():
        totals[table] += count
