"""Retention: purge what is older than the policy, now (`cli.py purge`) or hourly in the app.

Several instances may run the job at once: each batch is one transaction that first takes the
purge lock, and an instance that finds it taken leaves the work to the one holding it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from store.retention import no_rows
from store.schema import utcnow
from store.store import Store

BATCH = 500


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
    store: Store, policy: RetentionPolicy, *, dry_run: bool = False, now: datetime | None = None
) -> dict[str, int]:
    """Rows removed per table (or, with `dry_run`, rows that would be)."""
    cutoff, audit_cutoff = policy.cutoffs(now or utcnow())
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


class RetentionJob:
    """Runs the purge when started and then every `interval` seconds, until stopped."""

    def __init__(
        self,
        store: Store,
        policy: RetentionPolicy,
        *,
        interval: float,
        log: logging.Logger,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._policy = policy
        self._interval = interval
        self._log = log
        self._now = now
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        while not self._stopped.is_set():
            try:
                removed = await purge_expired(self._store, self._policy, now=self._now())
            except Exception:
                self._log.exception("retention: purge failed; trying again at the next run")
            else:
                if any(removed.values()):
                    summary = ", ".join(f"{table} {count}" for table, count in removed.items() if count)
                    self._log.info("retention: removed %s", summary)
            try:
                await asyncio.wait_for(self._stopped.wait(), self._interval)
            except TimeoutError:
                pass

    def stop(self) -> None:
        """The current purge (one short transaction) finishes; no new one starts."""
        self._stopped.set()


def _add(totals: dict[str, int], more: dict[str, int]) -> None:
    for table, count in more.items():
        totals[table] += count
