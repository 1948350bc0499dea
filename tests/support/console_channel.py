"""A second chat platform, in memory: proof that handlers run over any `Channel`, not only Teams.

Its address shape is its own ({"room": ..., "person": ...}, nothing like botbuilder's
conversation reference): rooms are shared unless named "dm:<person>", the 1:1 chat with the bot.
Messages are kept as the handlers queued them (domain.replies), per room, in order.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from domain.replies import Reply
from errors import Permanent
from handlers.asking import Asker, Said
from handlers.channels import Address, Contact

CONSOLE = "console"  # its source name: Deps.channels[CONSOLE], Said.source


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str
    installed: bool = True  # False: the platform refuses a 1:1 chat with them


@dataclass
class Posted:
    room: str
    message: Reply
    reply_to: str | None = None
    id: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier versions, oldest first


class ConsoleChannel:
    """Implements handlers.channels.Channel over in-memory rooms."""

    def __init__(self, people: list[Person]) -> None:
        self.people = {person.id: person for person in people}
        self.posted: list[Posted] = []
        self.looked_up: list[str] = []
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()

    # -- the platform's side: what a person says, where -------------------------------------

    def said(self, person: Person, room: str, text: str) -> Said:
        """What the platform's endpoint would hand the handlers for `text` typed in `room`."""
        message_id = f"m{next(self._ids)}"
        personal = self.is_personal({"room": room})
        return Said(
            delivery_key=f"{CONSOLE}:{room}:{message_id}",
            source=CONSOLE,
            text=text,
            asker=Asker(id=person.id, aad_id=person.id, name=person.name),  # email: only by look_up
            conversation_id=room,
            conversation_type="personal" if personal else "room",
            address={"room": room, "person": person.id, "message": message_id},
            reply_to_id=message_id,
            place="a 1:1 console chat with the bot" if personal else f"the console room “{room}”",
        )

    def in_room(self, room: str) -> list[dict[str, Any]]:
        return [post.message for post in self.posted if post.room == room]

    async def wait_for(self, room: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        """The messages in `room` once there are at least `count`."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.in_room(room)) >= count), timeout)
        return self.in_room(room)

    # -- handlers.channels.Channel ------------------------------------------------------------

    async def send(self, address: Address, message: Reply, *, reply_to_id: str | None = None,
                   personal: bool = False) -> None:
        if personal and not self.is_personal(address):
            opened = await self.open_personal(address)
            if opened is None:
                raise Permanent("no 1:1 chat with that person")
            address, reply_to_id = opened, None
        await self._add(Posted(address["room"], message, reply_to_id))

    async def post(self, address: Address, message: Reply) -> str:
        posted = Posted(address["room"], message, id=f"p{next(self._ids)}")
        await self._add(posted)
        return posted.id

    async def update(self, address: Address, message_id: str, message: Reply) -> None:
        posted = next(p for p in self.posted if p.id == message_id and p.room == address["room"])
        async with self._changed:
            posted.history.append(posted.message)
            posted.message = message
            self._changed.notify_all()

    async def look_up(self, address: Address, user_id: str) -> Contact | None:
        self.looked_up.append(user_id)
        person = self.people.get(user_id)
        return Contact(person.name, person.email) if person else None

    async def open_personal(self, address: Address) -> Address | None:
        person = self.people.get(address.get("person", ""))
        if person is None or not person.installed:
            return None
        return {"room": f"dm:{person.id}", "person": person.id}

    def is_personal(self, address: Address) -> bool:
        return str(address.get("room", "")).startswith("dm:")

    def for_keeping(self, address: Address) -> Address:
        return {"room": address["room"]}

    def chat_itself(self, address: Address) -> Address:
        return {"room": address["room"]}

    def same_chat(self, address: Address, other: Address) -> bool:
        return bool(address["room"] == other["room"])

    async def _add(self, posted: Posted) -> None:
        async with self._changed:
            self.posted.append(posted)
            self._changed.notify_all()
