"""The hosts' live board: one card per event, updated in place as its questions arrive.

Updates are coalesced: any change to an event's questions queues a refresh for the end of the
current 2-second interval, keyed by that interval, so a burst of 1,000 questions in a
minute makes about 30 card updates, and the last one, which runs after the last change, shows
the final counts.
"""

from __future__ import annotations

import math
from collections import Counter

from domain.jobs import BoardRefresh
from domain.replies import BoardCounts
from domain.states import Outcome, QuestionStatus
from errors import Transient
from handlers import replies
from handlers.channels import source_of
from handlers.clock import clock_time
from handlers.deps import Deps
from outbox.jobs import job
from store.outbox import OutboxRepo

INTERVAL_SECONDS = 2.0
SHOWN = 5


async def board_changed(outbox: OutboxRepo, event_id: int | None, interval: float = INTERVAL_SECONDS) -> None:
    """Queue (at most once per interval) a refresh of the event's board, in the caller's transaction."""
    if event_id is None:
        return
    now = outbox.clock.now().timestamp()
    bucket = math.floor(now / interval)
    delay = (bucket + 1) * interval - now
    await outbox.enqueue(BoardRefresh(event_id), dedupe_key=f"board:{event_id}:{bucket}", delay=delay)


@job(BoardRefresh)
async def refresh_board(deps: Deps, payload: BoardRefresh) -> None:
    """Outbox job: post the board card the first time, then update that same card.

    Only the job queued by "board here" (payload "first") posts; a refresh that runs before that
    post has finished waits for it, so concurrent jobs never post the board twice."""
    async with deps.store.unit() as unit:
        event = await unit.events.get(payload.event_id)
        if event is None or event.board_address is None:
            return
        tallies = await unit.events.tallies(event.id)
        newest = await unit.questions.newest_of_event(event.id, limit=SHOWN)
        supported = await unit.questions.most_supported_of_event(event.id, limit=SHOWN)
    updated = clock_time(deps.clock.now(), deps.limits.timezone)
    message = replies.board(event, _counts(tallies), updated, newest, supported)
    channel = deps.channel(source_of(event.board_address))
    if event.board_card_id:
        await channel.update(event.board_address, event.board_card_id, message)
        return
    if not payload.first:
        raise Transient("the board is being posted by its first job", retry_after=INTERVAL_SECONDS)
    card_id = await channel.post(event.board_address, message)
    async with deps.store.unit() as unit:
        await unit.events.set_board_card(event.id, card_id)


def _counts(tallies: dict[QuestionStatus, int]) -> BoardCounts:
    """The board's tiles, by what became of each question (domain.states: outcome)."""
    outcomes = Counter[Outcome]()
    for status, count in tallies.items():
        outcomes[status.properties.outcome] += count
    return BoardCounts(asked=sum(tallies.values()), answered_faq=outcomes[Outcome.FAQ],
                       waiting=outcomes[Outcome.WAITING], answered=outcomes[Outcome.MODERATOR],
                       dismissed=outcomes[Outcome.DISMISSED])

