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
    "reference such as Q-42, and bring their answer back to this chat."
)

WELCOME = (
    "Hello! I'm the colleague questions bot. Ask me anything about working here: pay, leave, "
    "buildings, IT, policies. Type **help** to see how it works."
)


ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
TEAMS = "msteams"
NO_EVENT = 0  # the event_id of the "None of these" button on "Which event is your question about?"


def render(message: dict[str, Any], *, channel_id: str | None = None) -> Activity:
    """One Activity for one reply message; unknown types are a programming error.

    For Teams, card buttons are Universal Actions (Action.Execute): the click comes back as an
    `adaptiveCard/action` invoke and its answer shows on the card, to the person who clicked,
    instead of as a message in the chat. Other channels (the Bot Framework Emulator's Web Chat
    does not handle Action.Execute) keep Action.Submit; the bot takes both.
    """
    activity = _RENDERERS[message["type"]](message)
    if message.get("privacy"):
        _add_privacy(activity, message["privacy"])
    if channel_id == TEAMS:
        for attachment in activity.attachments or []:
            if attachment.content_type == ADAPTIVE_CARD:
                _universal_actions(attachment.content)
    return activity


def invoke_text(message: dict[str, Any]) -> str:
    """A reply as the plain sentence Teams shows on a card after an Action.Execute click."""
    activity = render(message)
    return (activity.text or activity.summary or "").replace("**", "").strip()


def _universal_actions(node: Any) -> None:
    """Turn every Action.Submit of ours into an Action.Execute whose verb is its "action".

    The data stays as it was (inputs are merged into it the same way), so one parser reads
    both forms."""
    if isinstance(node, list):
        for item in node:
            _universal_actions(item)
    elif isinstance(node, dict):
        data = node.get("data")
        verb = data.get("action") if isinstance(data, dict) else None
        if node.get("type") == "Action.Submit" and isinstance(verb, str):
            node["type"] = "Action.Execute"
            node["verb"] = verb
        for value in node.values():
            _universal_actions(value)


def _text(text: str) -> Activity:
    activity = MessageFactory.text(text)
    activity.text_format = "markdown"
    return activity


def _faq_answer(message: dict[str, Any]) -> Activity:
    def choice(title: str, helpful: bool) -> dict[str, Any]:
        data = {"action": "faq_feedback", "question_id": message["question_id"], "helpful": helpful}
        return {"type": "Action.Submit", "title": title, "data": data}

    body = [
        _block("From the staff FAQ", weight="Bolder", size="Medium"),
        _block(message["faq_question"], isSubtle=True),
        _block(message["answer"]),
        _block("Did this answer your question?", weight="Bolder"),
    ]
    return _card(body, [choice("Yes", True), choice("No, send it to the team", False)], summary=message["answer"])


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None, summary: str = "") -> Activity:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
    }
    if actions:
        card["actions"] = actions
    activity = MessageFactory.attachment(CardFactory.adaptive_card(card))
    activity.summary = summary[:200]
    return activity


def _block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


STATE_LABELS = {
    "forwarded": "Waiting for an answer",
    "claimed": "Claimed by {claimed_by}",
    "answered": "Answered by {acted_by}",
    "dismissed": "Dismissed by {acted_by}: {reason}",
    "merged": "Duplicate of {merged_into} (marked by {acted_by})",
    "answered_faq": "Answered from the FAQ",
}


def _moderation_card(m: dict[str, Any]) -> Activity:
    """One forwarded question in the moderators' channel; actions only while it is open."""
    state = STATE_LABELS.get(m["status"], m["status"]).format(**{k: m.get(k) or "someone" for k in
                                                                  ("claimed_by", "acted_by", "reason", "merged_into")})
    facts = [{"title": "Asked by", "value": m["asker"]}, {"title": "State", "value": state}]
    if m.get("event"):
        facts.insert(1, {"title": "Event", "value": m["event"]})
    if m.get("asked_in"):
        facts.insert(1, {"title": "Asked in", "value": m["asked_in"]})
    body = [
        _block(f"{m['ref']}{' (private)' if m.get('private') else ''}", weight="Bolder", size="Medium"),
        _block(m["text"]),
        {"type": "FactSet", "facts": facts},
    ]
    if m.get("answer"):
        body += [_block("Answer", weight="Bolder"), _block(m["answer"])]
    actions: list[dict[str, Any]] = []
    if m["status"] in ("forwarded", "claimed"):
        def submit(title: str, op: str) -> dict[str, Any]:
            return {"type": "Action.Submit", "title": title,
                    "data": {"action": "moderate", "op": op, "question_id": m["question_id"]}}

        body += [
            {"type": "Input.Text", "id": "answer", "isMultiline": True, "placeholder": "Answer to send to the colleague",
             "maxLength": 4000},
            {"type": "Input.Text", "id": "reason", "placeholder": "Reason, if dismissing"},
            {"type": "Input.Text", "id": "duplicate_of", "placeholder": "Duplicate of (e.g. Q-12)"},
        ]
        actions = [submit("Send answer", "answer"), submit("Claim", "claim"),
                   submit("Dismiss", "dismiss"), submit("Mark duplicate", "merge")]
        if m["status"] == "claimed":
            actions.pop(1)
    if m.get("faq_entry"):
        facts.append({"title": "In the FAQ as", "value": m["faq_entry"]})
    elif m["status"] == "answered":  # a good answer can become an FAQ entry the bot reuses
        add = {"type": "Action.Submit", "title": "Add to FAQ",
               "data": {"action": "moderate", "op": "faq", "question_id": m["question_id"]}}
        body += [  # in the body, apart from the question's own actions, which end with the answer
            _block("Add to the FAQ?", weight="Bolder", separator=True),
            {"type": "Input.Text", "id": "faq_question", "value": "" if m.get("private") else m["text"],
             "maxLength": 500, "label": "FAQ question (edit out anything personal)"},
            {"type": "Input.Text", "id": "faq_answer", "value": "" if m.get("private") else m.get("answer") or "",
             "isMultiline": True,
             "maxLength": 5000, "label": "FAQ answer"},
            {"type": "ActionSet", "actions": [add]},
        ]
    if not m.get("private"):  # HR or wellbeing: keep it off the board and out of the digest
        mark = {"type": "Action.Submit", "title": "Mark private",
                "data": {"action": "moderate", "op": "private", "question_id": m["question_id"]}}
        if actions:
            actions.append(mark)
        else:  # last in the body: a closed question's card keeps no open-question actions
            body.append({"type": "ActionSet", "actions": [mark], "separator": True})
    return _card(body, actions, summary=f"{m['ref']}: {m['text']}")


def _board(m: dict[str, Any]) -> Activity:
    """The hosts' live board for one event, replaced in place as questions arrive."""
    counts = m["counts"]
    facts = [{"title": title, "value": str(counts[key])} for key, title in (
        ("asked", "Asked"), ("answered_faq", "Answered from the FAQ"), ("waiting", "Waiting"),
        ("answered", "Answered by moderators"), ("dismissed", "Dismissed"))]
    body = [_block(f"E-{m['event_id']}: {m['title']} ({m['status']})", weight="Bolder", size="Medium"),
            {"type": "FactSet", "facts": facts}]
    for heading, key in (("Newest questions", "newest"), ("Most supported", "most_supported")):
        if m[key]:
            body.append(_block(heading, weight="Bolder"))
            body += [_block(f"{q['ref']} ({q['support']} +1): {q['text']}", spacing="Small") for q in m[key]]
    return _card(body, summary=f"{m['title']}: {counts['asked']} questions")


def _event_choice(m: dict[str, Any]) -> Activity:
    """Several events are open: the asker says which one the question is about."""
    def choice(title: str, event_id: int) -> dict[str, Any]:
        data = {"action": "event_choice", "question_id": m["question_id"], "event_id": event_id}
        return {"type": "Action.Submit", "title": title[:80], "data": data}

    body = [_block("Which event is your question about?", weight="Bolder"),
            _block(m["question"][:300], isSubtle=True)]
    actions = [choice(f"E-{e['id']}: {e['title']}", e["id"]) for e in m["events"]]
    return _card(body, [*actions, choice("None of these", NO_EVENT)],
                 summary="Which event is your question about?")


def _feedback_noted(message: dict[str, Any]) -> Activity:
    if message["status"] == "forwarded":
        return _text(f"Your question {message['ref']} is already with the team.")
    return _text("Thanks, your answer to that card was already recorded.")


def _answer(message: dict[str, Any]) -> Activity:
    """The answer as text, and under it a small card asking the asker whether it helped."""
    heading = "More on your question" if message["follow_up"] else "An answer to your question"
    quoted = "\n".join(f"> {line}" for line in message["question"].splitlines() if line.strip())
    activity = _text(f"**{heading} {message['ref']}**\n\n{quoted}\n\n{message['answer']}")
    if message.get("answer_id") and message.get("question_id"):  # replies queued before buttons had none

        def choice(title: str, helpful: bool) -> dict[str, Any]:
            data = {"action": "answer_feedback", "question_id": message["question_id"],
                    "answer_id": message["answer_id"], "helpful": helpful}
            return {"type": "Action.Submit", "title": title, "data": data}

        card = _card([_block("Did this answer help?", weight="Bolder")],
                     [choice("Helpful", True), choice("Not helpful", False)])
        activity.attachments = card.attachments
    return activity


def _add_privacy(activity: Activity, notice: str) -> None:
    """The privacy notice a handler put in the message (welcome, help, a new asker's first
    reply), at the end of its text, or of its card."""
    cards = [a.content for a in activity.attachments or [] if a.content_type == ADAPTIVE_CARD]
    if activity.text or not cards:
        activity.text = f"{activity.text}\n\n{notice}" if activity.text else notice
        return
    cards[0]["body"].append(_block(notice, isSubtle=True, size="Small", separator=True))


def _digest(message: dict[str, Any]) -> Activity:
    """Markdown from handlers.publishing, where every colleague's text is already escaped."""
    parts = message.get("parts", 1)
    note = f"*Part {message['part']} of {parts}*\n\n" if parts > 1 else ""
    return _text(note + message["markdown"])


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
    "answer": _answer,
    "notice": lambda m: _text(m["text"]),
    "moderation_card": _moderation_card,
    "board": _board,
    "dismissed": lambda m: _text(
        f"The team looked at your question **{m['ref']}** and closed it without a separate answer: {m['reason']}"
    ),
    "feedback_thanks": lambda _: _text("Thanks, glad that helped."),
    "feedback_noted": _feedback_noted,
    "answer_feedback_thanks": lambda m: _text(
        "Thanks for telling us." if m["helpful"] else
        "Thanks for telling us. If you still need an answer, ask again with a little more detail."
    ),
    "digest": _digest,
    "event_choice": _event_choice,
    "not_your_question": lambda _: _text(
        "Only the colleague who asked that question can answer this card."
    ),
}
