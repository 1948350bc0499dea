"""Who may do what: admins (from settings), hosts and moderators (granted by an admin).

Roles are always worked out here, on the server, from the authenticated sender: the Entra
object id of the Teams user (and the email the Teams roster gives for it), never from anything
a card or message carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from handlers.deps import Deps


class Role(StrEnum):
    ADMIN = "admin"
    HOST = "host"
    MODERATOR = "moderator"


GRANTABLE = (Role.HOST, Role.MODERATOR)


@dataclass(frozen=True)
class Actor:
    """An authenticated person acting on the bot."""

    id: str  # Teams user id, or an email address for mail and the CLI
    aad_id: str | None
    name: str | None
    email: str | None

    @property
    def label(self) -> str:
        """How the audit log and cards name them."""
        return self.name or self.email or self.aad_id or self.id


class NotAllowed(Exception):
    """The sender lacks the role an action needs."""

    def __init__(self, role: Role) -> None:
        super().__init__(f"This needs the {role.value} role.")
        self.role = role


async def roles_of(deps: Deps, actor: Actor, *, address: dict[str, Any] | None = None) -> set[Role]:
    """The actor's roles. An admin is also a host and a moderator."""
    email = actor.email
    if email is None and actor.aad_id:
        email = await _email_of(deps, actor, address)
    principals = {p.lower() for p in (actor.aad_id, email) if p}
    if principals & deps.admins:
        return {Role.ADMIN, Role.HOST, Role.MODERATOR}
    async with deps.store.unit() as unit:
        granted = await unit.roles.roles_of(principals)
    return {Role(role) for role in granted}


async def require(deps: Deps, actor: Actor, role: Role, *, address: dict[str, Any] | None = None) -> None:
    if role not in await roles_of(deps, actor, address=address):
        raise NotAllowed(role)


async def _email_of(deps: Deps, actor: Actor, address: dict[str, Any] | None) -> str | None:
    """A Teams user's email: remembered from an earlier roster look-up, else looked up now."""
    assert actor.aad_id is not None
    async with deps.store.unit() as unit:
        known = await unit.people.email_of(actor.aad_id)
    if known or address is None:
        return known
    contact = await deps.directory.lookup(address, actor.id)
    if contact is None or not contact.email:
        return None
    async with deps.store.unit() as unit:
        await unit.people.remember(actor.aad_id, email=contact.email, name=contact.name)
    return contact.email
