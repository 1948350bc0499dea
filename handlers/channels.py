"""The seam between what the bot does and the chat platform it does it on.

Handlers reach colleagues through a `Channel`, chosen by where a question or command came
from (its source: "teams" today). An address is the channel's own JSON-storable description of
where to post (a chat, a thread, a 1:1 chat): handlers store it and hand it back, never read it.
Everything a platform needs beyond that (its address shape, roster, 1:1 chats) lives in its
own package: Teams' in bot/ (bot.channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from domain.replies import Reply

Address: TypeAlias = dict[str, Any]

TEAMS = "teams"  # the source of everything said in Teams, and of addresses kept before there were others
SOURCE = "source"  # in an address handlers keep (a board, the moderators' channel): whose it is


@dataclass(frozen=True)
class Contact:
    name: str | None
    email: str | None


class Channel(Protocol):
    """One chat platform. Failures raise errors.Transient (try again later) or
    errors.Permanent (never will), since most calls run as outbox jobs."""

    async def send(self, address: Address, message: Reply, *, reply_to_id: str | None = None,
                   personal: bool = False) -> None:
        """One reply message (domain.replies). `personal`: to the 1:1 chat with the person
        `address` names, never to the shared chat it names."""

    async def post(self, address: Address, message: Reply) -> str:
        """A new message (a card to update later); returns its id."""

    async def update(self, address: Address, message_id: str, message: Reply) -> None:
        """Replace an earlier posted message in place."""

    async def look_up(self, address: Address, user_id: str) -> Contact | None:
        """Who `user_id`, who spoke at `address`, is (None: the platform does not say)."""

    async def open_personal(self, address: Address) -> Address | None:
        """The 1:1 chat with the person `address` names (None: the platform refuses one)."""

    def is_personal(self, address: Address) -> bool:
        """Whether `address` is a 1:1 chat with the bot (nobody else reads it)."""

    def for_keeping(self, address: Address) -> Address:
        """The address to store for posting to that chat later: without whoever spoke there."""

    def chat_itself(self, address: Address) -> Address:
        """The chat `address` names, not the thread or message of the command typed there: what
        the bot posts there on its own (cards, reminders) starts a new post instead of replying."""

    def same_chat(self, address: Address, other: Address) -> bool:
        """Whether two addresses name one chat, whatever thread, message or speaker they carry."""


class UnknownChannel(LookupError):
    """A source no channel is configured for (a question from a channel since removed)."""

    def __init__(self, source: str) -> None:
        super().__init__(f"no chat channel is configured for {source!r} in this process")


def kept(source: str, channel: Channel, address: Address) -> Address:
    """The address to store for a chat a command named ("board here", "moderate here"), with
    the source that can post there (see source_of)."""
    return tagged(source, channel.for_keeping(address))


def tagged(source: str, address: Address) -> Address:
    """`address` with the source it belongs to, for keeping apart from its question."""
    return {**address, SOURCE: source}


def source_of(address: Address) -> str:
    """The source of a kept address (kept before there were other channels: Teams)."""
    source = address.get(SOURCE)
    return source if isinstance(source, str) else TEAMS
