"""The dependencies a handler may use, passed explicitly (no globals, nothing from the app)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from clock import Clock
from faq.store import Faq
from handlers.channels import Channel, UnknownChannel
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
    limits: Limits
    log: logging.Logger
    clock: Clock  # every time a handler reads (never the system's own)
    channels: Mapping[str, Channel] = field(default_factory=dict)  # by source: {"teams": ...}
    admins: frozenset[str] = frozenset()

    def channel(self, source: str) -> Channel:
        """The chat channel questions and commands from `source` came through (UnknownChannel:
        none here, e.g. in the CLI, which has no chat platform)."""
        try:
            return self.channels[source]
        except KeyError:
            raise UnknownChannel(source) from None
