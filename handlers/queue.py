"""Where the moderators' queue lives, and how a question's card is scheduled for (re)drawing."""

from __future__ import annotations

from domain.jobs import ModerationCard
from store.store import Unit

MODERATORS_CHANNEL = "moderators.address"


FIRST_POST = "forwarded"


async def queue_card_refresh(unit: Unit, question_id: int, *, reason: str, post: bool = False) -> None:
    """Post or update the question's card in the moderators' channel, if one is configured.

    Only the job queued when the question is forwarded (reason FIRST_POST) posts the card; every
    later refresh updates it. Jobs run concurrently, so a refresh that finds no card yet waits
    for that first post instead of posting a second card (see handlers.moderation.refresh_card).
    `post`: this job posts a new card too (`moderate here` for questions forwarded before it,
    `show Q-n`).
    """
    if await unit.state.get(MODERATORS_CHANNEL) is None:
        return
    card = ModerationCard(question_id, first=post or reason == FIRST_POST)
    await unit.outbox.enqueue(card, dedupe_key=f"modcard:{question_id}:{reason}")
