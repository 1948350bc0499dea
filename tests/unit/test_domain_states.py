"""Question states: one row of properties per state, and nothing guessed for a state not in it."""

from __future__ import annotations

from dataclasses import fields
from enum import StrEnum

import pytest

from domain.states import PROPERTIES, Outcome, QuestionStatus, StateProperties, complete_table


def test_every_state_has_every_property() -> None:
    for state in QuestionStatus:
        row = PROPERTIES[state]
        for field in fields(StateProperties):
            value = getattr(row, field.name)
            assert value is not None and value != "", f"{state}: {field.name}"
        assert isinstance(row.outcome, Outcome) and isinstance(row.waiting, bool)
        card_label, card_style = row.card
        board_word, board_colour = row.board
        assert card_label and card_style and board_word and board_colour, state
    assert set(PROPERTIES) == set(QuestionStatus)


def test_a_state_added_without_a_row_is_refused_naming_it() -> None:
    withdrawn = StrEnum("Withdrawn", [*((s.name, s.value) for s in QuestionStatus), ("WITHDRAWN", "withdrawn")])
    with pytest.raises(TypeError, match="without a row in PROPERTIES: withdrawn"):
        complete_table(withdrawn, PROPERTIES)


def test_a_row_for_no_state_is_refused() -> None:
    fewer = StrEnum("Fewer", [(s.name, s.value) for s in QuestionStatus if s is not QuestionStatus.MERGED])
    with pytest.raises(TypeError, match="for no question state: merged"):
        complete_table(fewer, PROPERTIES)


def test_an_unknown_state_from_the_database_is_an_error_that_names_it() -> None:
    with pytest.raises(ValueError, match="unknown question state 'withdrawn'"):
        QuestionStatus("withdrawn")


def test_the_states_keep_the_strings_the_database_holds() -> None:
    assert [state.value for state in QuestionStatus] == [
        "received", "answered_faq", "forwarded", "answered", "claimed", "dismissed", "merged"]


def test_open_means_with_the_moderators_and_waiting_means_no_answer_yet() -> None:
    assert [s for s in QuestionStatus if s.properties.open] == [QuestionStatus.FORWARDED, QuestionStatus.CLAIMED]
    assert {s for s in QuestionStatus if s.properties.waiting} == {
        QuestionStatus.RECEIVED, QuestionStatus.FORWARDED, QuestionStatus.CLAIMED}
