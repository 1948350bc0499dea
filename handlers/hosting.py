"""Running live events: open, close and list them, from Teams or from `cli.py events`.

Both front ends call these functions, so an event opened from the command line behaves
exactly like one opened in Teams (same audit entries, same board refresh). Checking the
caller's role is the front end's job: the CLI is trusted (whoever can reach the database
can do anything anyway), Teams commands call `roles.require` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from errors import Refused
from handlers.board import board_changed
from handlers.clock import DEFAULT_ZONE
from handlers.plain import inert
from handlers.references import reference_number
from store.records import Event
from store.store import Store, Unit

MAX_TITLE_CHARS = 200


def event_number(given: str) -> int:
    """`3`, `E-3` or `e3` → 3; Refused for anything else."""
    return reference_number(given, "E", "an event", 3)


def parse_ends_at(given: str, now: datetime, zone: ZoneInfo = DEFAULT_ZONE) -> datetime:
    """An ISO 8601 time after `now`. Without an offset it is in `zone` (TIMEZONE), the clock hosts use."""
    try:
        moment = datetime.fromisoformat(given.strip())
    except ValueError:
        raise Refused(f"{given!r} is not an ISO 8601 date and time, e.g. 2025-03-14T15:00.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if moment <= now:
        raise Refused(f"{given!r} is in the past: an event has to end after it opens.")
    return moment


async def find_event(unit: Unit, given: str) -> Event:
    """The event a reference names; Refused if there is none."""
    number = event_number(given)
    event = await unit.events.get(number)
    if event is None:
        raise Refused(f"There is no event E-{number} (see the list of events).")
    return event


async def open_event(
    store: Store,
    title: str,
    *,
    by: str,
    description: str | None = None,
    ends_at: datetime | None = None,
    meeting_id: str | None = None,
    source_key: str | None = None,
    same_title_ok: bool = True,
) -> int:
    """Open an event: from now on new questions belong to it. Audit-logged. The same
    `source_key` (a Teams delivery) again returns the event it opened and changes nothing.
    Without `same_title_ok`, an open event of the same title is more likely a host's second
    try than a second event: SameTitleOpen, and nothing is opened."""
    title = " ".join(title.split())
    if not title:
        raise Refused("An event needs a title.")
    if len(title) > MAX_TITLE_CHARS:
        raise Refused(f"That title is {len(title)} characters; the limit is {MAX_TITLE_CHARS}.")
    async with store.unit() as unit:
        same = [event for event in await unit.events.open_events() if event.title.casefold() == title.casefold()]
        if same and not same_title_ok:
            raise SameTitleOpen(same[0])
        event_id, opened = await unit.events.open(title, description=(description or "").strip() or None,
                                                  ends_at=ends_at, by=by, source_key=source_key)
        if not opened:
            return event_id
        if meeting_id:
            await unit.events.link_meeting(event_id, meeting_id)
        await unit.audit.record(by, "event.open", f"E-{event_id}", title)
    return event_id


class SameTitleOpen(Refused):
    """An event of that title is open already: the host confirms before a second one opens."""

    def __init__(self, event: Event) -> None:
        title = inert(event.title)
        super().__init__(f"**E-{event.id}** ({title}) is already open. To open another event with the "
                         f"same title, type **open another event {title}**.")
        self.event = event


async def close_event(store: Store, given: str, *, by: str) -> tuple[Event, bool]:
    """Close the event (once: False if it was closed already); its board shows it."""
    async with store.unit() as unit:
        event = await find_event(unit, given)
        closed = await unit.events.close(event.id)
        if closed:
            await unit.audit.record(by, "event.close", f"E-{event.id}")
            await board_changed(unit.outbox, event.id)
    return event, closed


@dataclass(frozen=True)
class EventLine:
    """One event as a list shows it."""

    event: Event
    asked: int


async def list_events(store: Store) -> list[EventLine]:
    async with store.unit() as unit:
        listed = await unit.events.all()
        return [EventLine(event, sum((await unit.events.tallies(event.id)).values())) for event in listed]
