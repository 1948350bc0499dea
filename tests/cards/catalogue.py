"""Every message the bot can send, at its largest and with hostile text: written as the JSON
the outbox stores, and read as the typed reply (domain.replies) the renderer gets.

The schema and size checks (test_cards.py) and the renderer script (tools/render_cards.mjs,
through tools/cards_json.py) use this one list, so a new card type is checked as soon as it
is added here, and test_cards.py fails until it is.
"""

from __future__ import annotations

from typing import Any

from domain.replies import Board, QuestionCard, Reply
from domain.stored import decode

# Colleague text that would be a link and formatting if shown as typed.
HOSTILE = "[Click here](https://evil.example/x) **urgent** _see_ www.evil.example or hr@evil.example"
# The largest a colleague's text can be (MAX_QUESTION_CHARS' default is 2,000; moderators'
# answers 4,000), in characters of four UTF-8 bytes each: the worst case for the size limit.
WIDE = "\U0001F600"
LONG_QUESTION = WIDE * 2000
LONG_ANSWER = WIDE * 4000
LONG_MAIL_ANSWER = WIDE * 6000  # a moderator's mail reply has no 4,000-character box
LONG_NAME = "N" * 256
TITLE = "Quarterly all-staff briefing on the new council headquarters and hybrid working"


def read(raw: dict[str, Any] | Reply) -> Reply:
    """A message from its stored JSON, as the outbox reads it (an unknown key fails here)."""
    message: Reply = decode(Reply, raw) if isinstance(raw, dict) else raw
    return message


def moderation(status: str, **changes: Any) -> QuestionCard:
    card = read({
        "type": "moderation_card", "question_id": 7, "ref": "Q-7",
        "text": "Will the Shire Hall car park reopen after the works? " + HOSTILE,
        "asker": "Sam Staff " + HOSTILE, "event": TITLE, "status": status, "claimed_by": "Mo One",
        "acted_by": "Mo One", "answer": "Yes, in March. " + HOSTILE if status == "answered" else None,
        "reason": "Asked and answered at the briefing", "merged_into": "Q-3", "private": False,
        "faq_entry": None, **changes,
    })
    assert isinstance(card, QuestionCard)
    return card


def _board(**changes: Any) -> Board:
    line = {"ref": "Q-1234", "text": "Can we keep working from home on Fridays? " + HOSTILE + " " + "x" * 200,
            "support": 3}
    states = ("forwarded", "claimed", "answered", "answered_faq", "merged", "dismissed", "received")
    # an FAQ topic of the longest length allowed, a usual one, and none ("Other questions")
    topics = ("Learning and careers, policy and people", "Pensions and benefits", None)
    board = read({"type": "board", "event_id": 3, "title": TITLE, "status": "open", "updated": "14:05",
            "counts": {"asked": 12000, "answered_faq": 4000, "waiting": 6000, "answered": 1500, "dismissed": 500},
            "newest": [{**line, "status": state, "support": 0, "topic": topics[n % 3]}
                       for n, state in enumerate(states[:5])],
            "most_supported": [{**line, "status": state, "support": 1234, "topic": topics[n % 3]}
                               for n, state in enumerate(states[2:])], **changes})
    assert isinstance(board, Board)
    return board


FAQ = {"type": "faq_answer", "question_id": 5, "ref": "Q-5", "entry_id": "pay-date",
       "faq_question": "When is payday? " + HOSTILE,
       "answer": "The last working day of the month; see [Pay dates](https://intranet.example/pay)."}
EVENT_CHOICE = {"type": "event_choice", "question_id": 9, "ref": "Q-9", "question": "Is parking free? " + HOSTILE,
                "events": [{"id": 1, "title": TITLE}, {"id": 2, "title": "Afternoon briefing " + HOSTILE}]}
ANSWER = {"type": "answer", "ref": "Q-4", "question": "Is parking free? " + HOSTILE, "answer": "Yes. " + HOSTILE,
          "follow_up": False, "question_id": 4, "answer_id": 2}

# name -> message; the names are the PNG file names of tools/render_cards.mjs.
CARDS: dict[str, Reply] = {name: read(message) for name, message in {
    "faq-answer": FAQ,
    "faq-answer-used": {**FAQ, "chosen": "You said this answered your question."},
    "moderation-waiting": moderation("forwarded", faq_choices=[
        {"id": "car-parking", "question": "Where can I park at County Hall? " + HOSTILE},
        {"id": "building-opening-hours", "question": "What are the building opening hours?"},
        {"id": "x" * 80, "question": LONG_QUESTION[:500]}]),
    "moderation-answered-with-faq-entry": moderation("answered", answer="Staff parking is in the " + HOSTILE,
                                                     faq_link="car-parking", faq_link_sent=True),
    "moderation-claimed": moderation("claimed"),
    "moderation-answered": moderation("answered"),
    "moderation-answered-private-in-faq": moderation("answered", private=True, faq_entry="car-park-reopening"),
    "moderation-dismissed": moderation("dismissed"),
    "moderation-merged": moderation("merged"),
    "moderation-longest": moderation("answered", text=LONG_QUESTION, answer=LONG_ANSWER, asker=LONG_NAME,
                                      event=TITLE, acted_by=LONG_NAME),
    "moderation-longest-with-follow-up": moderation("answered", text=LONG_QUESTION, answer=LONG_ANSWER,
                                                    asker=LONG_NAME, acted_by=LONG_NAME, follow_up=LONG_ANSWER,
                                                    follow_up_via="mail", follow_ups=2),
    "moderation-longest-waiting": moderation("claimed", text=LONG_QUESTION, asker=LONG_NAME, claimed_by=LONG_NAME),
    "board": _board(),
    "event-picker": EVENT_CHOICE,
    "event-picker-used": {**EVENT_CHOICE, "chosen": "Thanks: Q-9 is now a question for E-2."},
    "answer": ANSWER,
    "answer-longest": {**ANSWER, "question": LONG_QUESTION, "answer": LONG_MAIL_ANSWER},
    "answer-feedback-used": {"type": "answer_feedback_card", "chosen": "You said this answer helped."},
}.items()}
# Cards the people asking see (they must fit a phone: 320 px); the rest are for moderators and hosts.
STAFF_FACING = frozenset({"faq-answer", "faq-answer-used", "event-picker", "event-picker-used", "answer",
                          "answer-longest", "answer-feedback-used"})

# Text replies, with the longest or most hostile content each can carry.
TEXTS: dict[str, Reply] = {name: read(message) for name, message in {
    "welcome": {"type": "welcome"},
    "help": {"type": "help", "sections": [{"role": "staff", "commands": [
        {"command": "me too", "does": "support a question", "example": "me too Q-12"}]}]},
    "too_long": {"type": "too_long", "limit": 2000, "length": 2500},
    "forwarded": {"type": "forwarded", "ref": "Q-42"},
    "notice": {"type": "notice", "text": "Done."},
    "dismissed": {"type": "dismissed", "ref": "Q-3", "question": HOSTILE, "reason": HOSTILE},
    "feedback_thanks": {"type": "feedback_thanks"},
    "feedback_noted": {"type": "feedback_noted", "status": "forwarded", "ref": "Q-3"},
    "answer_feedback_thanks": {"type": "answer_feedback_thanks", "helpful": False},
    "digest": {"type": "digest", "event_id": 1, "markdown": "# E-1", "part": 1, "parts": 1},
    "not_your_question": {"type": "not_your_question"},
}.items()}
