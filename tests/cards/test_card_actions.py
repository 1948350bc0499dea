"""Every card action survives the trip a click makes: rendered into a card, sent back by the
client with the card's inputs filled in, parsed into the same action. Anything else is refused."""

from __future__ import annotations

from typing import Any

import pytest

from bot.render import TEAMS, render
from domain.cards import (
    VERBS,
    AnswerFeedback,
    CardAction,
    CardError,
    EventChoice,
    FaqFeedback,
    Moderate,
    Op,
    parse_card,
)
from domain.replies import Reply
from tests.cards.catalogue import ANSWER, EVENT_CHOICE, FAQ, moderation, read

WAITING = moderation("forwarded", faq_choices=[{"id": "car-parking", "question": "Where can I park?"}])
CLAIMED = moderation("claimed")
ANSWERED = moderation("answered")

# (the message whose card has the button, the action a click on it with these inputs means)
EXAMPLES: list[tuple[dict[str, Any] | Reply, CardAction]] = [
    (FAQ, FaqFeedback(5, helpful=True)),
    (FAQ, FaqFeedback(5, helpful=False)),
    (ANSWER, AnswerFeedback(4, 2, helpful=True)),
    (ANSWER, AnswerFeedback(4, 2, helpful=False)),
    (EVENT_CHOICE, EventChoice(9, 2)),
    (EVENT_CHOICE, EventChoice(9, None)),  # "None of these"
    (WAITING, Moderate(Op.CLAIM, 7)),
    (WAITING, Moderate(Op.ANSWER, 7, answer="Yes, in March.")),
    (CLAIMED, Moderate(Op.ANSWER, 7, answer="Yes, in March.", send_anyway=True)),
    (CLAIMED, Moderate(Op.RELEASE, 7)),  # sends no inputs: a draft answer stays in the box
    (WAITING, Moderate(Op.DISMISS, 7, answer="", reason="Answered at the briefing")),
    (WAITING, Moderate(Op.MERGE, 7, duplicate_of="Q-3")),
    (WAITING, Moderate(Op.FAQ_LINK, 7, faq_entry="car-parking", faq_entry_id="")),
    (moderation("forwarded"), Moderate(Op.FAQ_LINK, 7, faq_entry_id="pay-date")),
    (WAITING, Moderate(Op.PRIVATE, 7, private_reason="A health matter")),
    (ANSWERED, Moderate(Op.FAQ, 7, faq_question="When does the car park reopen?", faq_answer="In March.")),
]


def _buttons(card: dict[str, Any], inputs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Every button on a card with the inputs a click on it sends: its own card's and, for a
    button in a panel, those of the cards around it (none with associatedInputs "none")."""
    own = inputs + [node for node in _walk(card.get("body", [])) if node.get("type", "").startswith("Input.")]
    actions = list(card.get("actions", []))
    actions += [a for node in _walk(card.get("body", [])) if node.get("type") == "ActionSet" for a in node["actions"]]
    found: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for action in actions:
        if action["type"] == "Action.ShowCard":
            found += _buttons(action["card"], own)
        else:
            found.append((action, [] if action.get("associatedInputs") == "none" else own))
    return found


def _walk(node: Any) -> list[dict[str, Any]]:
    """The card elements in `node`, not going into a panel's card (its inputs are its own)."""
    if isinstance(node, list):
        return [found for item in node for found in _walk(item)]
    if not isinstance(node, dict):
        return []
    inner = [value for key, value in node.items() if key not in ("card", "actions")]
    return [node] + [found for value in inner for found in _walk(value)] + _walk(node.get("actions", []))


def _sent(field: dict[str, Any], value: Any) -> str:
    """What the client sends for an input holding `value`: text, always."""
    if field["type"] == "Input.Toggle":
        return field["valueOn"] if value else field["valueOff"]
    if field["type"] == "Input.ChoiceSet":
        sent = str(EventChoice.NONE if value is None else value)
        assert sent in [choice["value"] for choice in field["choices"]], f"{field['id']}: {sent} is not a choice"
        return sent
    return str(value)


def _button(message: dict[str, Any] | Reply, action: CardAction) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Teams button on the message's card that means `action`, and the inputs a click sends."""
    [attachment] = render(read(message), channel_id=TEAMS).attachments
    [found] = [(b, i) for b, i in _buttons(attachment.content, [])
               if b.get("verb") == action.verb and b["data"] == action.to_data()]
    return found


def _click(message: dict[str, Any] | Reply, action: CardAction) -> tuple[dict[str, Any], dict[str, Any]]:
    """The button that means `action`, and what a click on it sends with its inputs filled in."""
    button, inputs = _button(message, action)
    for field in inputs:
        assert hasattr(action, field["id"]), f"the {action.verb} card has an input {field['id']!r} no field names"
    filled = {field["id"]: _sent(field, getattr(action, field["id"])) for field in inputs}
    return button, {**button["data"], **filled}


@pytest.mark.parametrize(("message", "action"), EXAMPLES, ids=[f"{n}-{a.verb}" for n, (_, a) in enumerate(EXAMPLES)])
def test_every_card_action_round_trips_through_its_card(message: dict[str, Any] | Reply, action: CardAction) -> None:
    button, sent = _click(message, action)
    assert button["fallback"]["data"] == button["data"]  # the Action.Submit form sends the same
    assert parse_card(sent) == action


def test_every_verb_op_and_input_has_an_example() -> None:
    """A new verb, operation or input is tested here as soon as it is defined."""
    assert {action.verb for _, action in EXAMPLES} == set(VERBS)
    assert {action.op for _, action in EXAMPLES if isinstance(action, Moderate)} == set(Op)
    for verb, kind in VERBS.items():
        filled = {field["id"] for message, action in EXAMPLES if action.verb == verb
                  for field in _button(message, action)[1]}
        assert filled == kind.inputs(), f"{verb}: inputs no card has: {sorted(kind.inputs() - filled)}"


GOOD = {"action": "answer_feedback", "question_id": 4, "answer_id": 2, "helpful": True}


@pytest.mark.parametrize(("raw", "named"), [
    ({**GOOD, "action": "delete"}, "action"),
    ({**GOOD, "admin": True}, "admin"),
    ({k: v for k, v in GOOD.items() if k != "answer_id"}, "answer_id"),
    ({**GOOD, "question_id": "4"}, "question_id"),
    ({**GOOD, "question_id": True}, "question_id"),
    ({**GOOD, "question_id": 2**31}, "question_id"),
    ({**GOOD, "question_id": 0}, "question_id"),
    ({**GOOD, "helpful": "yes"}, "helpful"),
    ({**GOOD, "helpful": "true"}, "helpful"),  # a toggle's text only where the card has a toggle
    ({"action": "moderate", "op": "delete", "question_id": 7}, "op"),
    ({"action": "moderate", "op": "answer", "question_id": 7, "send_anyway": "maybe"}, "send_anyway"),
    ({"action": "moderate", "op": "answer", "question_id": 7, "answer": ["Yes"]}, "answer"),
    ({"action": "event_choice", "question_id": 9, "event_id": "E-2"}, "event_id"),
    ({"action": "faq_feedback", "question_id": 5}, "helpful"),
])
def test_a_submission_our_cards_do_not_send_is_refused_naming_the_key(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(CardError, match=named):
        parse_card(raw)


@pytest.mark.parametrize("raw", [None, [GOOD], "answer_feedback", {}])
def test_data_that_is_not_a_card_s_is_refused(raw: Any) -> None:
    with pytest.raises(CardError):
        parse_card(raw)


def test_a_verb_reads_only_its_own_data() -> None:
    with pytest.raises(CardError, match="action"):
        AnswerFeedback.from_data({**GOOD, "action": "faq_feedback"})
