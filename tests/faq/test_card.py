"""The moderators' card offers "Add to FAQ" once a question is answered, then names the entry."""

from __future__ import annotations

from typing import Any

from bot.render import render
from tests.cards.catalogue import read


def card(**changes: Any) -> dict[str, Any]:
    message = {
        "type": "moderation_card", "question_id": 7, "ref": "Q-7", "text": "can I bring my dog in",
        "asker": "A colleague", "event": None, "status": "answered", "claimed_by": None,
        "acted_by": "Mo", "answer": "Only assistance dogs.", "reason": None, "merged_into": None,
        "private": False, "faq_entry": None, **changes,
    }
    content = render(read(message)).attachments[0].content
    assert isinstance(content, dict)
    return content


def test_answered_question_card_offers_add_to_faq_with_question_and_answer_filled_in() -> None:
    content = card()
    panels = next(b["actions"] for b in content["body"] if b["type"] == "ActionSet")
    panel = next(p for p in panels if p["title"] == "Add to FAQ")
    assert panel["type"] == "Action.ShowCard"  # closed until a moderator opens it
    [action] = panel["card"]["actions"]
    assert action["data"] == {"action": "moderate", "op": "faq", "question_id": 7}
    assert "actions" not in content  # the question's own actions are over once it is answered
    inputs = {b["id"]: b["value"] for b in panel["card"]["body"] if b["type"] == "Input.Text"}
    assert inputs == {
        "faq_question": "can I bring my dog in",
        "faq_answer": "Only assistance dogs.",
    }


def test_card_of_question_in_the_faq_names_the_entry_and_offers_nothing() -> None:
    content = card(faq_entry="can-i-bring-my-dog-in")
    assert "Add to FAQ" not in str(content)
    assert "In the FAQ as: can-i-bring-my-dog-in" in "".join(
        run["text"] for b in content["body"] if b["type"] == "RichTextBlock" for run in b["inlines"])


def test_waiting_question_card_does_not_offer_add_to_faq() -> None:
    content = card(status="forwarded", acted_by=None, answer=None)
    assert "Send answer" in str(content["actions"]) and "Add to FAQ" not in str(content)
