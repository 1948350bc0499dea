"""The dependencies a handler may use, passed explicitly (no globals, nothing from the app)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from clock import Clock
from domain.jobs import TeamsSend
from faq.store import Faq
from handlers.clock import DEFAULT_ZONE
from mail.base import MailTransport
from store.store import Store


class Match(Protocol):
    """What the FAQ matcher tells a handler (see faq.matcher.Match); read-only."""

    @property
    def entry(self) -> Any: ...

    @property
    def score(self) -> float: ...

    @property
    def candidates(self) -> tuple[tuple[Any, float], ...]: ...

    @property
    def topic(self) -> str | None: ...


class Matcher(Protocol):
    @property
    def faq(self) -> Faq: ...  # the entries it answers from now (file and database)

    def match(self, text: str) -> Match: ...

    def match_many(self, texts: Sequence[str]) -> Sequence[Match]: ...


@dataclass(frozen=True)
class Contact:
    name: str | None
    email: str | None


class Conversations(Protocol):
    """Sending, posting and updating messages in Teams conversations (cards updated in place)."""

    async def send(self, reply: TeamsSend) -> None: ...

    async def post(self, address: dict[str, Any], message: dict[str, Any]) -> str: ...

    async def update(self, address: dict[str, Any], activity_id: str, message: dict[str, Any]) -> None: ...


class Directory(Protocol):
    """Looks up who an asker is (Teams roster), so moderators know whom to answer."""

    async def lookup(self, address: dict[str, Any], user_id: str) -> Contact | None: ...


class PersonalChats(Protocol):
    """Opens the 1:1 chat with the colleague an address names (None: Teams refused, the app is
    not installed for them), for private and anonymous questions asked in shared chats."""

    async def open(self, address: dict[str, Any]) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Limits:
    max_question_chars: int
    moderators_address: str
    retention_days: int = 365  # what colleagues are told (handlers.privacy)
    digest_names: bool = False  # DIGEST_NAMES: published digests name askers of public questions
    timezone: ZoneInfo = DEFAULT_ZONE  # TIMEZONE: the zone of every time people read


@dataclass(frozen=True)
class Deps:
    store: Store
    faq: Matcher
    mail: MailTransport
    directory: Directory
    limits: Limits
    log: logging.Logger
    clock: Clock  # every time a handler reads (never the system's own)
    conversations: Conversations | None = None
    personal_chats: PersonalChats | None = None
    admins: frozenset[str] = frozenset()
