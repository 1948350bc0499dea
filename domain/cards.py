"""What a click on one of the bot's card buttons means: one frozen dataclass per verb.

bot/render.py puts `action.to_data()` in a button's `data` (and the verb, for Teams' Universal
Actions); the client sends that back with the card's inputs merged in, and `parse_card` turns
it into the same action, or refuses it with a CardError that names the bad key. Handlers get
the typed action, never the submitted dict. A field marked `INPUT` is not in the button: it is
the value of the card's input with that id, as the client sends it (text; "true"/"false" for a
toggle). `tests/cards/test_card_actions.py` renders every card, clicks every button with its
inputs filled in, and checks the parsed action: an input id no field names, or a field no card
fills in, fails there.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self

VERB = "action"  # the data's key naming the verb (Action.Submit has no verb of its own)
MAX_ROW_ID = 2**31  # ids are 32-bit INTEGER columns; PostgreSQL rejects larger values outright
INPUT = {"input": True}  # field metadata: the value of a card input, not part of the button's data


class CardError(ValueError):
    """A submission our cards do not send: an unknown verb, a key missing, unknown or ill-typed."""


class CardAction:
    """Base of the actions below; `verb` is the word in the button's data (and Action.Execute's verb)."""

    verb: ClassVar[str]

    def to_data(self) -> dict[str, Any]:
        """The button's `data`: the verb and the fields that are not card inputs."""
        assert dataclasses.is_dataclass(self)
        fixed = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.metadata.get("input")}
        return {VERB: self.verb, **{name: str(v) if isinstance(v, StrEnum) else v for name, v in fixed.items()}}

    @classmethod
    def inputs(cls) -> frozenset[str]:
        """The ids of the card inputs this verb reads."""
        assert dataclasses.is_dataclass(cls)
        return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("input"))

    @classmethod
    def from_data(cls, raw: Mapping[str, Any]) -> Self:
        """The action a submission of this verb's data (inputs merged in) means; CardError if
        anything in it is not what our cards send."""
        assert dataclasses.is_dataclass(cls)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if raw.get(VERB, cls.verb) != cls.verb:
            raise CardError(f"{cls.verb}: {VERB} is {raw[VERB]!r:.40}")
        unknown = sorted(str(key) for key in raw if key != VERB and key not in fields)
        if unknown:
            raise CardError(f"{cls.verb}: unknown keys {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in fields.items():
            if name not in raw:
                if spec.default is dataclasses.MISSING:
                    raise CardError(f"{cls.verb}: {name} is missing")
                continue
            values[name] = _decode(cls.verb, name, hints[name], raw[name], bool(spec.metadata.get("input")))
        return cls(**values)


def _decode(verb: str, name: str, hint: Any, value: Any, typed_in: bool) -> Any:
    """`value` as the field's type: ids as ints that fit the id columns, flags as booleans
    (a toggle input's "true"/"false" too), text stripped, operations by their word."""
    if hint is int:
        if type(value) is int and 0 < value < MAX_ROW_ID:
            return value
        raise CardError(f"{verb}: {name} must be an id (a whole number from 1), not {value!r:.40}")
    if hint is bool:
        if type(value) is bool:
            return value
        if typed_in and value in ("true", "false"):
            return value == "true"
        raise CardError(f"{verb}: {name} must be true or false, not {value!r:.40}")
    if hint is str:
        if isinstance(value, str):
            return value.strip()
        raise CardError(f"{verb}: {name} must be text, not {type(value).__name__}")
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        try:
            return hint(value)
        except ValueError:
            raise CardError(f"{verb}: {name} must be one of {', '.join(hint)}, not {value!r:.40}") from None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # an event id, or None for "none of these"
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
            value = int(value)  # a choice set sends its value as text
        if type(value) is int and value == EventChoice.NONE:
            return None
        return _decode(verb, name, int, value, typed_in)
    raise TypeError(f"{verb}: no decoding for {name}'s type {hint}")


@dataclass(frozen=True)
class FaqFeedback(CardAction):
    """"Did this answer your question?" under an FAQ answer: No sends it to the team."""

    verb: ClassVar[str] = "faq_feedback"
    question_id: int
    helpful: bool


@dataclass(frozen=True)
class AnswerFeedback(CardAction):
    """Helpful / Not helpful under a moderator's answer."""

    verb: ClassVar[str] = "answer_feedback"
    question_id: int
    answer_id: int
    helpful: bool


@dataclass(frozen=True)
class EventChoice(CardAction):
    """"Which event is your question about?": the event picked, or None for "None of these"."""

    verb: ClassVar[str] = "event_choice"
    NONE: ClassVar[int] = 0  # the choice set's value for "None of these"
    question_id: int
    event_id: int | None = field(default=None, metadata=INPUT)


class Op(StrEnum):
    """What a moderator does with a button on a question's card."""

    CLAIM = "claim"
    RELEASE = "release"
    ANSWER = "answer"
    DISMISS = "dismiss"
    MERGE = "merge"
    FAQ = "faq"  # add the answered question to the FAQ
    PRIVATE = "private"
    FAQ_LINK = "faq_link"  # answer it with an FAQ entry


@dataclass(frozen=True)
class Moderate(CardAction):
    """A button on the moderators' card of a question, with the card's inputs (each button
    sends those of its own form and of the card around it; the handler reads its op's)."""

    verb: ClassVar[str] = "moderate"
    op: Op
    question_id: int
    answer: str = field(default="", metadata=INPUT)  # op answer
    send_anyway: bool = field(default=False, metadata=INPUT)  # op answer: although another moderator claimed it
    reason: str = field(default="", metadata=INPUT)  # op dismiss, shown to the asker
    duplicate_of: str = field(default="", metadata=INPUT)  # op merge: "Q-12" or "12"
    faq_question: str = field(default="", metadata=INPUT)  # op faq
    faq_answer: str = field(default="", metadata=INPUT)  # op faq
    private_reason: str = field(default="", metadata=INPUT)  # op private, kept in the log
    faq_entry: str = field(default="", metadata=INPUT)  # op faq_link: the nearest entry ticked
    faq_entry_id: str = field(default="", metadata=INPUT)  # op faq_link: an id typed (wins over the tick)

    @property
    def detail(self) -> str:
        """What the moderator typed for this op, as the audit log keeps it ("" for none)."""
        typed = {Op.ANSWER: self.answer, Op.DISMISS: self.reason, Op.MERGE: self.duplicate_of,
                 Op.FAQ: self.faq_question, Op.PRIVATE: self.private_reason, Op.FAQ_LINK: self.faq_entry_id}
        return typed.get(self.op, "")


#: Every verb our cards send (the actions defined above; subclasses a test defines later are not among them).
VERBS: Mapping[str, type[CardAction]] = types.MappingProxyType(
    {action.verb: action for action in CardAction.__subclasses__()}
)
if len(VERBS) != len(CardAction.__subclasses__()):
    raise TypeError("two card actions share a verb")
#: Any card action, for the type checker: the bot's dispatch (bot.teams) has a branch for each.
Card = FaqFeedback | AnswerFeedback | EventChoice | Moderate
if set(typing.get_args(Card)) != set(VERBS.values()):
    raise TypeError(f"card actions not in Card: {sorted(set(VERBS) - {a.verb for a in typing.get_args(Card)})}")


def parse_card(raw: Any) -> Card:
    """The action a card submission means (its data with the inputs merged in); CardError for
    anything our cards do not send, before anything is done."""
    if not isinstance(raw, Mapping):
        raise CardError(f"a card's data must be an object, not {type(raw).__name__}")
    verb = raw.get(VERB)
    if not isinstance(verb, str) or verb not in VERBS:
        raise CardError(f"{VERB} must be one of {', '.join(sorted(VERBS))}, not {verb!r:.40}")
    return typing.cast(Card, VERBS[verb].from_data(raw))
