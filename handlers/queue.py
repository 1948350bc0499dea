"""Where the moderators' queue lives, and how a question's card is scheduled for (re)drawing."""

from __future__ import annotations

from store.store import Unit

MODERATION_CARD = "moderation.card"
MODERATORS_CHANNEL = "moderators.address"


FIRST_POST = "forwarded"


async def queue_card_refresh(unit: Unit, question_id: int, *, reason: str) -> None:
    """Post or update the question's card in the moderators' channel, if one is configured.

    Only the job queued when the question is forwarded (reason FIRST_POST) posts the card; every
    later refresh updates it. Jobs run concurrently, so a refresh that finds no card yet waits
    for that first post instead of posting a second card (see handlers.moderation.refresh_card).
    """
    if await unit.state.get(MODERATORS_CHANNEL) is None:
        return
    await unit.outbox.enqueue(
        MODERATION_CARD,
        {"question_id": question_id, "first": reason == FIRST_POST},
        dedupe_key=f"modcard:{question_id}:{reason}",
    )
