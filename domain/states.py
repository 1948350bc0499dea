"""A question's states, and everything each state means, in one table.

The values are the strings the database holds. Adding a state means adding its row to
`PROPERTIES`: the module refuses to load without it, and `tests/unit/test_domain_states.py`
checks every row is whole. Code asks a state what it means (`status.properties.open`) instead
of listing states, so a new state is counted, shown and forwarded the way its row says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from types import MappingProxyType


class QuestionStatus(StrEnum):
    RECEIVED = "received"  # committed, not yet matched
    ANSWERED_FAQ = "answered_faq"  # the FAQ answered it; the asker may still say "No"
    FORWARDED = "forwarded"  # sent to the moderators
    ANSWERED = "answered"  # a moderator answered; later answers are follow-ups
    CLAIMED = "claimed"  # a moderator is writing the answer
    DISMISSED = "dismissed"  # a moderator decided it needs no answer (with a reason)
    MERGED = "merged"  # a duplicate: answered with the question it was merged into

    @classmethod
    def _missing_(cls, value: object) -> QuestionStatus:
        """A state this version does not know (a newer version's, or a typo in the database)
        is an error that names it, never a silent default."""
        raise ValueError(f"unknown question state {value!r}; known: {', '.join(cls)}")

    @property
    def properties(self) -> StateProperties:
        return PROPERTIES[self]


class Outcome(StrEnum):
    """What became of a question, as an event's report and board count it."""

    FAQ = "faq"  # answered from the FAQ
    MODERATOR = "moderator"  # answered by the moderators (a duplicate with its original)
    DISMISSED = "dismissed"
    WAITING = "waiting"  # no answer yet


@dataclass(frozen=True)
class StateProperties:
    label: str  # the state in a sentence to the asker: "Q-3 (with the team)"
    open: bool  # with the moderators, for them to act on: answer, claim, dismiss, merge; reminded
    mailed: bool  # its forward belongs in the moderators' mailbox: the forward job sends it only
    #               in these states, and an answer given in Teams is copied to that mail thread
    outcome: Outcome
    learnable: bool  # tells the FAQ matcher something (store.faq_examples)
    card: tuple[str, str]  # the moderators' card: heading ({claimed_by}, {acted_by}, {reason},
    #                         {merged_into} filled in) and its container style
    board: tuple[str, str]  # the hosts' board: a word taken in at a glance, and its colour

    @property
    def waiting(self) -> bool:
        """Nobody has answered it yet: counted as waiting on the board and in the report."""
        return self.outcome is Outcome.WAITING


def complete_table(
    states: Iterable[Enum], table: Mapping[QuestionStatus, StateProperties]
) -> Mapping[QuestionStatus, StateProperties]:
    """The table, if it has a row for every state and nothing else; else an error naming them."""
    states = set(states)
    missing = sorted(str(state.value) for state in states if state not in table)
    if missing:
        raise TypeError(f"question states without a row in PROPERTIES: {', '.join(missing)}")
    extra = sorted(str(state) for state in table if state not in states)
    if extra:
        raise TypeError(f"rows in PROPERTIES for no question state: {', '.join(extra)}")
    return MappingProxyType(dict(table))


_S = QuestionStatus
PROPERTIES: Mapping[QuestionStatus, StateProperties] = complete_table(QuestionStatus, {
    _S.RECEIVED: StateProperties(
        label="received", open=False, mailed=False, outcome=Outcome.WAITING, learnable=False,
        card=("Received", "default"), board=("Waiting", "Warning")),
    _S.ANSWERED_FAQ: StateProperties(
        label="answered from the FAQ", open=False, mailed=False, outcome=Outcome.FAQ, learnable=True,
        card=("Answered from the FAQ", "good"), board=("FAQ", "Good")),
    _S.FORWARDED: StateProperties(
        label="with the team", open=True, mailed=True, outcome=Outcome.WAITING, learnable=True,
        card=("Waiting for an answer", "warning"), board=("Waiting", "Warning")),
    _S.CLAIMED: StateProperties(
        label="being answered", open=True, mailed=True, outcome=Outcome.WAITING, learnable=True,
        card=("Claimed by {claimed_by}", "accent"), board=("Being answered", "Accent")),
    _S.ANSWERED: StateProperties(
        label="answered", open=False, mailed=True, outcome=Outcome.MODERATOR, learnable=True,
        card=("Answered by {acted_by}", "good"), board=("Answered", "Good")),
    _S.DISMISSED: StateProperties(
        label="closed", open=False, mailed=False, outcome=Outcome.DISMISSED, learnable=False,
        card=("Dismissed by {acted_by}: {reason}", "emphasis"), board=("Dismissed", "Default")),
    _S.MERGED: StateProperties(
        label="answered with another", open=False, mailed=False, outcome=Outcome.MODERATOR, learnable=True,
        card=("Duplicate of {merged_into} (marked by {acted_by})", "emphasis"), board=("Duplicate", "Default")),
})
OPEN_STATES = tuple(state for state in QuestionStatus if state.properties.open)
