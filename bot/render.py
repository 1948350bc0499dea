"""Turn the product's reply messages (handlers/replies.py) into Teams activities and cards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botbuilder.core import CardFactory, MessageFactory
from botbuilder.schema import Activity

HELP = (
    "**I collect colleagues' questions and make sure each one gets an answer.**\n\n"
    "- Ask me in this chat, or @mention me in a channel or group chat, during or after a "
    "staff event.\n"
    "- If the staff FAQ has a confident answer I reply at once and ask whether it helped; "
    "if it did not, one click sends your question to the team.\n"
    "- Otherwise I pass your question to the team that answers staff questions, give you a "
    "reference such as Q-42, and bring their answer back to this chat.\n\n"
    "Your question, your name and your work email are kept so the answer can reach you, and "
    "deleted after the council's retention period."
)

WELCOME = (
    "Hello! I'm the colleague questions bot. Ask me anything about working here: pay, leave, "
    "buildings, IT, policies. Type **help** to see how it works."
)


def render(message: dict[str, Any]) -> Activity:
    """One Activity for one reply message; unknown types are a programming error."""
    return _RENDERERS[message["type"]](message)


def _text(text: str) -> Activity:
    activity = MessageFactory.text(text)
    activity.text_format = "markdown"
    return activity


def _faq_answer(message: dict[str, Any]) -> Activity:
    def choice(title: str, helpful: bool) -> dict[str, Any]:
        data = {"action": "faq_feedback", "question_id": message["question_id"], "helpful": helpful}
        return {"type": "Action.Submit", "title": title, "data": data}

    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": [
            {"type": "TextBlock", "text": "From the staff FAQ", "weight": "Bolder", "size": "Medium"},
            {"type": "TextBlock", "text": message["faq_question"], "wrap": True, "isSubtle": True},
            {"type": "TextBlock", "text": message["answer"], "wrap": True},
            {"type": "TextBlock", "text": "Did this answer your question?", "wrap": True, "weight": "Bolder"},
        ],
        "actions": [choice("Yes", True), choice("No, send it to the team", False)],
    }
    activity = MessageFactory.attachment(CardFactory.adaptive_card(card))
    activity.summary = message["answer"][:200]
    return activity


def _feedback_noted(message: dict[str, Any]) -> Activity:
    if message["status"] == "forwarded":
        return _text(f"Your question {message['ref']} is already with the team.")
    return _text("Thanks, your answer to that card was already recorded.")


_RENDERERS: dict[str, Callable[[dict[str, Any]], Activity]] = {
    "welcome": lambda _: _text(WELCOME),
    "help": lambda _: _text(HELP),
    "too_long": lambda m: _text(
        f"That message is {m['length']:,} characters long; a question can be at most "
        f"{m['limit']:,}. Nothing has been recorded: please shorten it and send it again."
    ),
    "faq_answer": _faq_answer,
    "forwarded": lambda m: _text(
        "I couldn't find a confident answer in the staff FAQ, so I've sent your question to the "
        f"team (reference **{m['ref']}**). Their answer will come back to you here."
    ),
    "feedback_thanks": lambda _: _text("Thanks, glad that helped."),
    "feedback_noted": _feedback_noted,
    "not_your_question": lambda _: _text(
        "Only the colleague who asked that question can answer this card."
    ),
}
