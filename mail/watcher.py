"""Polls the shared mailbox with a Graph delta query and hands each new mail to a handler.

The delta link is saved only after every mail of the page was handled, so a crash re-reads
the page; the handler recognises a mail it has seen (by Message-ID) and does nothing twice.
The first sync after installation takes a baseline: mail already in the Inbox is history, not
new questions, so it is skipped and only the delta link kept. Mail older than the baseline is
skipped after a resync (Graph's 410) too, for the same reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from errors import Transient
from mail.base import InboundMail
from mail.graph_inbox import GraphInbox

log = logging.getLogger(__name__)

LoadState = Callable[[], Awaitable[str | None]]
SaveState = Callable[[str], Awaitable[None]]
OnMail = Callable[[InboundMail], Awaitable[str]]


class InboxWatcher:
    def __init__(
        self,
        inbox: GraphInbox,
        *,
        load_state: LoadState,
        save_state: SaveState,
        on_mail: OnMail,
        poll_seconds: float,
        now: Callable[[], datetime],
    ) -> None:
        self._inbox = inbox
        self._load_state = load_state
        self._save_state = save_state
        self._now = now
        self._on_mail = on_mail
        self._poll_seconds = poll_seconds
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        while not self._stopped.is_set():
            delay = self._poll_seconds
            try:
                await self.sync_once()
            except Transient as error:
                delay = max(delay, error.retry_after or 0.0)
                log.warning("mailbox sync will retry in %.0fs: %s", delay, error)
            except Exception:
                log.exception("mailbox sync failed; retrying at the next poll")
            try:
                await asyncio.wait_for(self._stopped.wait(), delay)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopped.set()

    async def sync_once(self) -> list[str]:
        """One delta round: handle new mail, then save where we got to. Returns the outcomes."""
        saved = await self._load_state()
        state: dict[str, Any] = (
            json.loads(saved) if saved else {"delta_link": None, "baseline": self._now().isoformat()}
        )
        # Graph's receivedDateTime has whole seconds; so must the comparison.
        baseline = datetime.fromisoformat(state["baseline"]).replace(microsecond=0)
        page = await self._inbox.sync(state["delta_link"])
        outcomes: list[str] = []
        if state["delta_link"] is None:
            log.info("mailbox baseline taken: %d existing mails left as they are", len(page.items))
        else:
            for item in page.items:
                if page.resynced and item.mail.received_at < baseline:
                    continue  # a resync lists the whole Inbox again: history stays history
                outcome = await self._on_mail(await self._inbox.read_body(item))
                outcomes.append(outcome)
                await self._inbox.mark_processed(item.graph_id, trusted=outcome != "untrusted")
        state["delta_link"] = page.delta_link
        await self._save_state(json.dumps(state))
        return outcomes
