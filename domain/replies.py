"""Every message the bot sends colleagues: one frozen dataclass per kind, `Reply` their union.

Handlers build them (handlers/replies.py builds those that come from a question); each channel
renders them (bot/render.py for Teams, handlers/templates/mail_reply.* for mail), matching on
the class, so mypy names a renderer that forgot a kind. Queued in the outbox they are stored as
JSON with their `type` tag and the fields not at their default: the keys earlier versions
wrote, so rows they queued still read (`tests/unit/test_job_payloads.py`,
`tests/cards/test_cards.py`).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from domain.states import QuestionStatus
from domain.stored import TAG, encode


@dataclass(frozen=True, kw_only=True)
class ReplyBase:
    """What any reply may carry besides its own fields."""

    type: ClassVar[str]  # the kind's tag in stored JSON
    # The privacy notice, at the end of the text or card (welcome, help, a new asker's first reply).
    privacy: str | None = None
    # Answering a card click: the card that replaces the one clicked (its buttons become what was chosen).
    card: UsedForm | None = None

    def to_json(self) -> dict[str, Any]:
        """The reply as stored: its tag and every field not at its default."""
        values = ((f.name, getattr(self, f.name), f.default) for f in dataclasses.fields(self))
        return {TAG: self.type, **{name: encode(value) for name, value, default in values if value != default}}


@dataclass(frozen=True)
class Welcome(ReplyBase):
    """The introduction (its privacy notice in `privacy`)."""

    type: ClassVar[str] = "welcome"


@dataclass(frozen=True)
class HelpCommand:
    command: str
    does: str
    example: str


@dataclass(frozen=True)
class HelpSection:
    """The commands one role may use (role: handlers.roles.Role's value)."""

    role: str
    commands: tuple[HelpCommand, ...]


@dataclass(frozen=True)
class Help(ReplyBase):
    """How the bot works and the commands this sender may use, by role."""

    type: ClassVar[str] = "help"
    sections: tuple[HelpSection, ...] = ()


@dataclass(frozen=True)
class TooLong(ReplyBase):
    """A question over the length limit: nothing was recorded."""

    type: ClassVar[str] = "too_long"
    limit: int
    length: int


@dataclass(frozen=True)
class FaqAnswer(ReplyBase):
    """An answer from the FAQ, asking whether it answered the question; once used, `chosen` says
    what the asker said and the buttons are gone."""

    type: ClassVar[str] = "faq_answer"
    question_id: int
    ref: str
    entry_id: str
    faq_question: str
    answer: str
    chosen: str | None = None


@dataclass(frozen=True)
class Forwarded(ReplyBase):
    """No confident FAQ answer: the question went to the team."""

    type: ClassVar[str] = "forwarded"
    ref: str


@dataclass(frozen=True)
class Answer(ReplyBase):
    """A moderator's answer to the asker (or to a colleague who supported the question)."""

    type: ClassVar[str] = "answer"
    ref: str
    question: str
    answer: str
    follow_up: bool
    question_id: int | None = None
    answer_id: int | None = None  # with both ids the asker gets Helpful / Not helpful buttons
    supported: bool = False  # to a colleague who said "me too", not the asker


@dataclass(frozen=True)
class AnswerFeedbackThanks(ReplyBase):
    type: ClassVar[str] = "answer_feedback_thanks"
    helpful: bool


@dataclass(frozen=True)
class AnswerFeedbackCard(ReplyBase):
    """The "Did this answer help?" card once used: what the asker said, no buttons."""

    type: ClassVar[str] = "answer_feedback_card"
    chosen: str


@dataclass(frozen=True)
class Digest(ReplyBase):
    """An event digest (Markdown already escaped by handlers.publishing), or one part of it."""

    type: ClassVar[str] = "digest"
    event_id: int
    markdown: str
    part: int = 1
    parts: int = 1


@dataclass(frozen=True)
class Dismissed(ReplyBase):
    """The team closed the question without a separate answer, saying why."""

    type: ClassVar[str] = "dismissed"
    ref: str
    question: str
    reason: str


@dataclass(frozen=True)
class FeedbackThanks(ReplyBase):
    type: ClassVar[str] = "feedback_thanks"


@dataclass(frozen=True)
class FeedbackNoted(ReplyBase):
    """A second click, or a click on a question already forwarded: where it stands."""

    type: ClassVar[str] = "feedback_noted"
    status: QuestionStatus
    ref: str


@dataclass(frozen=True)
class EventOption:
    id: int
    title: str


@dataclass(frozen=True)
class EventPicker(ReplyBase):
    """"Which event is your question about?": one choice per open event, and "None of these";
    once the question is settled, `chosen` says what was chosen and the choices are gone."""

    type: ClassVar[str] = "event_choice"
    question_id: int = 0
    question: str = ""
    events: tuple[EventOption, ...] = ()
    ref: str = ""
    chosen: str | None = None


@dataclass(frozen=True)
class FaqChoice:
    """An FAQ entry offered on a question's card for "Answer with FAQ entry"."""

    id: str
    question: str


@dataclass(frozen=True)
class QuestionCard(ReplyBase):
    """A question's card in the moderators' channel, as it stands (handlers.moderation)."""

    type: ClassVar[str] = "moderation_card"
    question_id: int
    ref: str
    text: str
    asker: str  # the name shown, or words saying it was asked anonymously
    status: QuestionStatus
    event: str | None = None
    asked_in: str | None = None
    claimed_by: str | None = None
    acted_by: str | None = None
    answer: str | None = None  # the first answer, which stays
    follow_up: str | None = None  # the latest later answer, shown as a follow-up, never in its place
    follow_up_via: str | None = None
    follow_ups: int = 0
    reason: str | None = None
    merged_into: str | None = None
    private: bool = False
    faq_entry: str | None = None  # the FAQ entry made from this question
    faq_link: str | None = None  # the FAQ entry this question was linked to
    faq_link_sent: bool = False  # that entry's answer was the one sent
    faq_choices: tuple[FaqChoice, ...] = ()


@dataclass(frozen=True)
class BoardLine:
    ref: str
    text: str
    support: int
    status: QuestionStatus
    topic: str | None = None


@dataclass(frozen=True)
class BoardCounts:
    """The board's tiles, by what became of each question (domain.states: outcome)."""

    asked: int
    answered_faq: int
    waiting: int
    answered: int
    dismissed: int


@dataclass(frozen=True)
class Board(ReplyBase):
    """An event's live board for its hosts (handlers.board)."""

    type: ClassVar[str] = "board"
    event_id: int
    title: str
    status: str  # the event's
    counts: BoardCounts
    updated: str
    newest: tuple[BoardLine, ...] = ()
    most_supported: tuple[BoardLine, ...] = ()


@dataclass(frozen=True)
class Notice(ReplyBase):
    """A plain sentence for the person who typed a command or clicked (worded by the handler)."""

    type: ClassVar[str] = "notice"
    text: str


@dataclass(frozen=True)
class NotYourQuestion(ReplyBase):
    type: ClassVar[str] = "not_your_question"


Reply = (Welcome | Help | TooLong | FaqAnswer | Forwarded | Answer | AnswerFeedbackThanks | AnswerFeedbackCard
         | Digest | Dismissed | FeedbackThanks | FeedbackNoted | EventPicker | QuestionCard | Board | Notice
         | NotYourQuestion)
#: What reaches a colleague about their question wherever they asked it: in their chat, or by mail
#: (handlers/templates/mail_reply.*, which word each of these).
ToAsker = FaqAnswer | Forwarded | Dismissed | Answer
#: The cards a reply to a click can carry, to replace the one clicked.
UsedForm = FaqAnswer | AnswerFeedbackCard | EventPicker

#: Every kind by its tag; a kind left out of `Reply`, or two kinds with one tag, stop the import.
TYPES: dict[str, type[ReplyBase]] = {kind.type: kind for kind in ReplyBase.__subclasses__()}
_UNLISTED = set(ReplyBase.__subclasses__()) - set(typing.get_args(Reply))
if _UNLISTED or len(TYPES) != len(ReplyBase.__subclasses__()):
    raise TypeError(f"reply kinds not in Reply: {sorted(k.__name__ for k in _UNLISTED)}, or a tag used twice")
