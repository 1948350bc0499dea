"""Who may do what: admins (from settings), hosts and moderators (granted by an admin).

Roles are always worked out here, on the server, from the authenticated sender: the Entra
object id of the Teams user (and the email the Teams roster gives for it), never from anything
a card or message carries.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from errors import Refused
from handlers.deps import Deps
from store.store import Store


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


class Spoken(Protocol):
    """Where an actor spoke (a handlers.asking.Said): the channel that can say who they are."""

    @property
    def source(self) -> str: ...

    @property
    def address(self) -> dict[str, Any]: ...


class NotAllowed(Refused):
    """The sender lacks the role an action needs."""

    def __init__(self, role: Role) -> None:
        super().__init__(f"This needs the {role.value} role.")
        self.role = role


async def roles_of(deps: Deps, actor: Actor, *, at: Spoken | None = None) -> set[Role]:
    """The actor's roles. An admin is also a host and a moderator."""
    email = actor.email
    if email is None and actor.aad_id:
        email = await _email_of(deps, actor, at)
    principals = {p.lower() for p in (actor.aad_id, email) if p}
    if principals & deps.admins:
        return {Role.ADMIN, Role.HOST, Role.MODERATOR}
    async with deps.store.unit() as unit:
        granted = await unit.roles.roles_of(principals)
    return {Role(role) for role in granted}


async def require(deps: Deps, actor: Actor, role: Role, *, at: Spoken | None = None) -> None:
    if role not in await roles_of(deps, actor, at=at):
        raise NotAllowed(role)


async def _email_of(deps: Deps, actor: Actor, at: Spoken | None) -> str | None:
    """A chat user's email: remembered from an earlier look-up, else asked of their channel now
    (in Teams: the roster)."""
    assert actor.aad_id is not None
    async with deps.store.unit() as unit:
        known = await unit.people.email_of(actor.aad_id)
    if known or at is None:
        return known
    contact = await deps.channel(at.source).look_up(at.address, actor.id)
    if contact is None or not contact.email:
        return None
    async with deps.store.unit() as unit:
        await unit.people.remember(actor.aad_id, email=contact.email, name=contact.name)
    return contact.email


# An ASCII address: RFC 5322 dot-atoms for the local part, DNS labels for the domain. Anything
# else (a zero-width space, a Cyrillic look-alike, "eve@x.example;drop") could never be the
# address Teams reports for a sender, so it would grant nothing while looking as if it did.
_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
_OBJECT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_PRINCIPAL_CHARS = 254  # the longest address SMTP carries


def grantable_role(name: str) -> Role:
    """Only hosts and moderators are granted; admins come from the ADMINS setting."""
    for role in GRANTABLE:
        if name.strip().lower() == role.value:
            return role
    raise Refused(f"{name!r} is not a role that can be granted: use host or moderator.")


def principal(who: str) -> str:
    """What `roles_of` compares a sender with: an ASCII email address or an Entra object id,
    normalised (NFKC, trimmed, lower-case). Refused, naming the problem, for anything else."""
    value = unicodedata.normalize("NFKC", who).strip().lower()
    value = value.removeprefix("mailto:")
    odd = next((char for char in value if not (char.isascii() and char.isprintable())), None)
    if odd is not None:
        name = unicodedata.name(odd, "a control character")
        raise Refused(f"{who!a} contains U+{ord(odd):04X} ({name}): give a plain ASCII email "
                         "address or an Entra object id.")
    if len(value) > MAX_PRINCIPAL_CHARS or not (_EMAIL.fullmatch(value) or _OBJECT_ID.fullmatch(value)):
        raise Refused(f"{who!a} is neither an email address nor an Entra object id (a GUID).")
    return value


@dataclass(frozen=True)
class RoleChange:
    principal: str
    role: Role
    granted: bool  # True for a grant, False for a revoke
    changed: bool  # False: it was already so


async def change_role(store: Store, *, grant: bool, role: str, who: str, by: str) -> RoleChange:
    """Grant or revoke a role; audit-logged when it changed. Refused (nothing changed) for
    an unknown role or a principal that could never match a sender."""
    checked_role, checked = grantable_role(role), principal(who)
    async with store.unit() as unit:
        if grant:
            changed = await unit.roles.grant(checked, checked_role.value, by=by)
        else:
            changed = await unit.roles.revoke(checked, checked_role.value)
        if changed:
            await unit.audit.record(by, "role.grant" if grant else "role.revoke", checked, checked_role.value)
    return RoleChange(principal=checked, role=checked_role, granted=grant, changed=changed)


def describe(change: RoleChange) -> str:
    if not change.changed:
        has = "already has" if change.granted else "does not have"
        return f"Nothing to change: {change.principal} {has} the {change.role.value} role."
    verb = "now has" if change.granted else "no longer has"
    return f"{change.principal} {verb} the {change.role.value} role."


async def granted_roles(store: Store) -> list[tuple[str, str, str]]:
    """(principal, role, granted by) for every granted role; admins are in settings, not here."""
    async with store.unit() as unit:
        return await unit.roles.all()
