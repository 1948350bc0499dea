"""Turn the product's reply messages (domain.replies) into Teams activities and cards."""

from __future__ import annotations

import json
from typing import Any, assert_never

from botbuilder.core import CardFactory, MessageFactory
from botbuilder.schema import Activity

from domain.cards import VERB, AnswerFeedback, EventChoice, FaqFeedback, Moderate, Op
from domain.replies import (
    Answer,
    AnswerFeedbackCard,
    AnswerFeedbackThanks,
    Board,
    BoardLine,
    Digest,
    Dismissed,
    EventPicker,
    FaqAnswer,
    FaqChoice,
    FeedbackNoted,
    FeedbackThanks,
    Forwarded,
    Help,
    Notice,
    NotYourQuestion,
    QuestionCard,
    Reply,
    TooLong,
    Welcome,
)
from domain.states import QuestionStatus
from handlers.faq_links import ANOTHER_ENTRY
from handlers.plain import ELLIPSIS, cut, inert, no_links, wrappable

HELP = (
    "**I collect colleagues' questions and make sure each one gets an answer.** Ask me in this chat, "
    "or @mention me in a channel or group chat. If the staff FAQ has a confident answer you get it "
    "at once; otherwise the team answers and you get a reference such as Q-42."
)
ROLE_HEADINGS = {"staff": "Anyone", "moderator": "Moderators", "host": "Hosts", "admin": "Admins"}

WELCOME = (
    "Hello! I'm the colleague questions bot. Ask me anything about working here: pay, leave, "
    "buildings, IT, policies. Type **help** to see how it works."
)


ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
TEAMS = "msteams"


def render(message: Reply, *, channel_id: str | None = None) -> Activity:
    """One Activity for one reply message.

    For Teams, card buttons are Universal Actions (Action.Execute): the click comes back as an
    `adaptiveCard/action` invoke and its answer shows on the card, to the person who clicked,
    instead of as a message in the chat. Other channels (the Bot Framework Emulator's Web Chat
    does not handle Action.Execute) keep Action.Submit; the bot takes both.
    """
    activity = _activity(message)
    if message.privacy:
        _add_privacy(activity, message.privacy)
    if channel_id == TEAMS:
        for attachment in activity.attachments or []:
            if attachment.content_type == ADAPTIVE_CARD:
                _universal_actions(attachment.content)
    return activity


def invoke_text(message: Reply) -> str:
    """A reply as the plain sentence Teams shows on a card after an Action.Execute click."""
    activity = render(message)
    return (activity.text or activity.summary or "").replace("**", "").strip()


def updated_card(message: Reply) -> dict[str, Any] | None:
    """The card that replaces the one clicked, if the reply has one (its buttons replaced by what
    was chosen); None when the click changed nothing the card shows (a refusal, say)."""
    if message.card is None:
        return None
    [attachment] = render(message.card).attachments
    return attachment.content


def message_bytes(activity: Activity) -> int:
    """What Teams counts against its size limit: the activity's text and attachments as JSON."""
    attachments = [{"contentType": a.content_type, "content": a.content} for a in activity.attachments or []]
    return len(json.dumps({"text": activity.text, "summary": activity.summary, "attachments": attachments},
                          ensure_ascii=False).encode())


def _universal_actions(node: Any) -> None:
    """Turn every Action.Submit of ours into an Action.Execute whose verb is its data's verb, with
    the Action.Submit as its fallback for clients older than Universal Actions.

    The data stays as it was (inputs are merged into it the same way), so one parser reads
    both forms."""
    if isinstance(node, list):
        for item in node:
            _universal_actions(item)
    elif isinstance(node, dict):
        for value in node.values():
            _universal_actions(value)
        data = node.get("data")
        verb = data.get(VERB) if isinstance(data, dict) else None
        if node.get("type") == "Action.Submit" and isinstance(verb, str):
            fallback = dict(node)
            node["type"] = "Action.Execute"
            node["verb"] = verb
            node["fallback"] = fallback


def _text(text: str) -> Activity:
    activity = MessageFactory.text(text)
    activity.text_format = "markdown"
    return activity


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None, summary: str = "",
          *, full_width: bool = False) -> Activity:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
    }
    if actions:
        card["actions"] = actions
    if full_width:  # Teams' own extension: the card takes the chat's whole width
        card[TEAMS] = {"width": "Full"}
    activity = MessageFactory.attachment(CardFactory.adaptive_card(card))
    activity.summary = no_links(cut(summary, 200))
    return activity


def _block(text: str, **style: Any) -> dict[str, Any]:
    """Our own words (Markdown allowed); never a colleague's: see _plain."""
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _plain(text: str, **style: Any) -> dict[str, Any]:
    """A colleague's words: a text run is never read as Markdown, and nothing in it is a link."""
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": wrappable(no_links(text)), **style}]}


def _labelled(label: str, value: str) -> dict[str, Any]:
    """"Asked by: Sam" on one wrapping line (a FactSet's label column is cut on a phone)."""
    return {"type": "RichTextBlock", "spacing": "Small", "inlines": [
        {"type": "TextRun", "text": f"{label}: ", "weight": "Bolder"},
        {"type": "TextRun", "text": wrappable(no_links(value))}]}


def _shown(text: str, budget: int, note: str) -> list[dict[str, Any]]:
    """A colleague's text cut to `budget` UTF-8 bytes with "…", and a note saying so."""
    shown = cut_bytes(text, budget)
    return [_plain(shown)] + ([_block(note, isSubtle=True, size="Small", spacing="Small")] if shown != text else [])


def cut_bytes(text: str, budget: int) -> str:
    """At most `budget` bytes of UTF-8, ending in "…" if anything was cut."""
    if len(text.encode()) <= budget:
        return text
    kept = text.encode()[: budget - len(ELLIPSIS.encode())].decode(errors="ignore")
    return kept.rstrip() + ELLIPSIS


def _chosen(text: str) -> dict[str, Any]:
    """What replaces a card's buttons once they were used."""
    return _block(f"✓ {text}", color="Good", weight="Bolder")


def _submit(title: str, data: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"type": "Action.Submit", "title": title, "data": data, **options}


def _panel(title: str, inputs: list[dict[str, Any]], action: dict[str, Any]) -> dict[str, Any]:
    """A button that opens a small form of its own (Action.ShowCard): closed until wanted."""
    return {"type": "Action.ShowCard", "title": title, "card": {"type": "AdaptiveCard", "body": inputs,
                                                                 "actions": [action]}}


def _input(input_id: str, label: str, *, required: bool = True, **options: Any) -> dict[str, Any]:
    field = {"type": "Input.Text", "id": input_id, "label": label, **options}
    if required:
        field.update(isRequired=True, errorMessage=f"{label} is needed.")
    return field


def _faq_answer(message: FaqAnswer) -> Activity:
    def choice(title: str, helpful: bool) -> dict[str, Any]:
        return _submit(title, FaqFeedback(message.question_id, helpful).to_data())

    body = [
        _block("From the staff FAQ", weight="Bolder", size="Medium"),
        _plain(message.faq_question, isSubtle=True),
        _block(message.answer),  # the FAQ's own words, reviewed (links in it are meant)
    ]
    if message.chosen:
        return _card([*body, _chosen(message.chosen)], summary=message.answer)
    body.append(_block("Did this answer your question?", weight="Bolder"))
    return _card(body, [choice("Yes", True), choice("No, send it to the team", False)], summary=message.answer)


PANELS_PER_ROW = 2  # three panel buttons are cut on a phone (320 px); two fit
QUESTION_BUDGET = 3000  # bytes of a colleague's question shown on a card
ANSWER_BUDGET = 6000  # bytes of an answer shown on a card or in a reply
NAME_BUDGET = 200
FAQ_QUESTION_PREFILL = 500  # faq.store's limits on an entry
FAQ_ANSWER_PREFILL = 5000
FAQ_ID_CHARS = 80  # faq.store's limit on an entry's id
FAQ_CHOICE_CHARS = 150  # of an entry's question, offered on the card


def _moderation_card(m: QuestionCard) -> Activity:
    """One forwarded question in the moderators' channel.

    At most three buttons along the bottom (Send answer, Claim or Release); everything else
    opens a small form of its own, so the card stays short and no title is cut at Teams' width.
    """
    status = m.status
    label, style = status.properties.card  # names filled in below; the style colours the heading
    names = {k: cut_bytes(v or "someone", NAME_BUDGET)
             for k, v in (("claimed_by", m.claimed_by), ("acted_by", m.acted_by), ("reason", m.reason),
                          ("merged_into", m.merged_into))}
    header = {"type": "Container", "style": style, "items": [
        _block(f"{m.ref}{' · Private' if m.private else ''}", weight="Bolder", size="Medium"),
        _plain(label.format(**names), weight="Bolder"),  # on the state's colour, in the text's own
    ]}
    body = [header,
            *_shown(m.text, QUESTION_BUDGET, "Cut to fit the card: the whole question is in the forwarded mail."),
            _labelled("Asked by", cut_bytes(m.asker, NAME_BUDGET))]
    if m.asked_in:
        body.append(_labelled("Asked in", m.asked_in))
    if m.event:
        body.append(_labelled("Event", m.event))
    if m.faq_entry:
        body.append(_labelled("In the FAQ as", m.faq_entry))
    if m.faq_link:
        body.append(_labelled("Answered with FAQ entry" if m.faq_link_sent else "Linked to FAQ entry", m.faq_link))
    if m.answer:
        body += [_block("Answer", weight="Bolder"),
                 *_shown(m.answer, ANSWER_BUDGET, "Cut to fit the card: the whole answer went to the colleague.")]
    if m.follow_up:  # a later answer never replaces the first one silently
        count = f" (the latest of {m.follow_ups})" if m.follow_ups > 1 else ""
        way = {"mail": " by mail", "teams": " in Teams"}.get(m.follow_up_via or "", "")
        body += [_block(f"Follow-up{way}{count}", weight="Bolder"),
                 *_shown(m.follow_up, ANSWER_BUDGET // 2,
                         "Cut to fit the card: the whole follow-up went to the colleague.")]

    def data(op: Op) -> dict[str, Any]:
        return Moderate(op, m.question_id).to_data()

    actions: list[dict[str, Any]] = []
    panels: list[dict[str, Any]] = []
    if status.properties.open:
        body.append(_input("answer", "Answer to send to the colleague", required=False, isMultiline=True,
                           maxLength=4000))
        if status is QuestionStatus.CLAIMED:  # another moderator's answer needs this (handlers.moderation)
            body.append({"type": "Input.Toggle", "id": "send_anyway", "title": "Send it although another "
                         "moderator claimed it", "value": "false", "valueOn": "true", "valueOff": "false",
                         "wrap": True})
        actions.append(_submit("Send answer", data(Op.ANSWER), style="positive"))
        claim = ("Release", Op.RELEASE) if status is QuestionStatus.CLAIMED else ("Claim", Op.CLAIM)
        actions.append(_submit(claim[0], data(claim[1]), associatedInputs="none"))
        if not m.private and not m.faq_link:
            panels.append(_faq_link_panel(m.faq_choices, data(Op.FAQ_LINK)))
        panels += [
            _panel("Dismiss", [_input("reason", "Reason (the colleague sees it)", maxLength=500)],
                   _submit("Dismiss question", data(Op.DISMISS))),
            _panel("Duplicate", [_input("duplicate_of", "Duplicate of (e.g. Q-12)", maxLength=20)],
                   _submit("Mark duplicate", data(Op.MERGE))),
        ]
    # A good answer can become an FAQ entry (one linked to an entry is in the FAQ already).
    if status is QuestionStatus.ANSWERED and not m.faq_entry and not m.faq_link:
        # A private question's words never go into the FAQ as they are: the moderator writes the
        # entry in their own words, so both fields start empty and the answer must be typed.
        private = m.private
        answer = "" if private else m.answer or ""
        fits = private or (len(answer) <= FAQ_ANSWER_PREFILL and len(answer.encode()) <= ANSWER_BUDGET)
        question = "" if private else cut_bytes(m.text, QUESTION_BUDGET)[:FAQ_QUESTION_PREFILL]
        panels.append(_panel("Add to FAQ", [
            _input("faq_question", "FAQ question (edit out anything personal)", maxLength=FAQ_QUESTION_PREFILL,
                   value=question),
            _input("faq_answer", "FAQ answer" if fits else "FAQ answer (leave empty: the whole answer sent)",
                   required=fits, isMultiline=True, maxLength=FAQ_ANSWER_PREFILL, value=answer if fits else ""),
        ], _submit("Add to FAQ", data(Op.FAQ))))
    if not m.private:  # HR or wellbeing: off the board and out of the digest, in any state
        panels.append(_panel("Mark private", [_input("private_reason", "Why it is private (kept in the log)",
                                                     maxLength=200)],
                             _submit("Mark private", data(Op.PRIVATE))))
    for row in range(0, len(panels), PANELS_PER_ROW):
        body.append({"type": "ActionSet", "actions": panels[row:row + PANELS_PER_ROW], "separator": row == 0})
    return _card(body, actions, summary=f"{m.ref}: {m.text}", full_width=True)


def _faq_link_panel(choices: tuple[FaqChoice, ...], data: dict[str, Any]) -> dict[str, Any]:
    """"Answer with FAQ entry": one of the matcher's nearest entries, or another found with `faq
    search` (an id typed wins); the asker gets its answer and the bot learns the wording."""
    find = "type faq search and a few words in a chat with me to find it"
    inputs: list[dict[str, Any]] = []
    if choices:  # choice titles are Markdown to Microsoft's renderer: escaped like any text
        offered = [{"title": f"{inert(c.id)}: {inert(cut(c.question, FAQ_CHOICE_CHARS))}", "value": c.id}
                   for c in choices]
        inputs.append({"type": "Input.ChoiceSet", "id": "faq_entry", "style": "expanded", "wrap": True,
                       "isRequired": True, "errorMessage": "Choose an entry, or Another entry and type its id.",
                       "label": "Nearest FAQ entries",
                       "choices": [*offered, {"title": "Another entry: its id below", "value": ANOTHER_ENTRY}]})
    inputs.append(_input("faq_entry_id", f"{'Another entry' if choices else 'Entry'}'s id ({find})",
                         required=not choices, maxLength=FAQ_ID_CHARS))
    return _panel("Answer with FAQ entry", inputs, _submit("Answer with this entry", data))


def _board(m: Board) -> Activity:
    """The hosts' live board for one event, replaced in place as questions arrive: the counts
    as tiles, then the questions with their state, and when it was last brought up to date."""
    counts = m.counts
    tiles = [_tile(title, getattr(counts, key)) for key, title in BOARD_TILES]
    rows = [{"type": "ColumnSet", "columns": tiles[row:row + 2]} for row in range(0, len(tiles), 2)]
    body = [_plain(f"E-{m.event_id}: {m.title} ({m.status})", weight="Bolder", size="Medium"),
            _block(f"Updated {m.updated}", isSubtle=True, size="Small", spacing="None"),
            {"type": "Container", "id": "counts", "items": rows}]  # two tiles a row: readable on a phone
    if counts.dismissed:
        body.append(_block(f"{counts.dismissed} dismissed", isSubtle=True, size="Small", spacing="Small"))
    for heading, lines in (("Newest questions", m.newest), ("Most supported", m.most_supported)):
        if lines:
            body.append(_block(heading, weight="Bolder", separator=True))
            body += [_board_line(q) for q in lines]
    return _card(body, summary=f"{m.title}: {counts.asked} questions", full_width=True)


def _tile(title: str, count: int) -> dict[str, Any]:
    """One count as a tile: the number large, its name small underneath."""
    return {"type": "Column", "width": "stretch", "style": "emphasis", "items": [
        _block(f"{count:,}", size="Large", weight="Bolder", horizontalAlignment="Center"),
        _block(title, size="Small", horizontalAlignment="Center", spacing="None")]}


def _board_line(q: BoardLine) -> dict[str, Any]:
    """"Q-3 ▲ 2 Waiting · Pay  text…": supporters and topic shown only when there are some."""
    support = f" ▲ {q.support}" if q.support else ""
    label, colour = q.status.properties.board
    topic = [{"type": "TextRun", "text": f"· {no_links(cut(q.topic, BOARD_TOPIC_CHARS))} ",
              "isSubtle": True, "size": "Small"}] if q.topic else []
    return {"type": "RichTextBlock", "spacing": "Small", "inlines": [
        {"type": "TextRun", "text": f"{q.ref}{support} ", "weight": "Bolder"},
        {"type": "TextRun", "text": f"{label} ", "color": colour, "weight": "Bolder", "size": "Small"},
        *topic,
        {"type": "TextRun", "text": wrappable(no_links(cut(q.text, BOARD_LINE_CHARS)))}]}


# (BoardCounts field, tile name); dismissed questions are a note under the tiles, not a tile
BOARD_TILES = (("asked", "Asked"), ("answered", "Answered"), ("waiting", "Waiting"), ("answered_faq", "From the FAQ"))
BOARD_LINE_CHARS = 200
BOARD_TOPIC_CHARS = 40  # an FAQ topic's longest (faq.store.MAX_TOPIC_CHARS)


def _event_choice(m: EventPicker) -> Activity:
    """Several events are open: the asker says which one the question is about (full titles,
    one Send button)."""
    body = [_block("Which event is your question about?", weight="Bolder")]
    if m.question:
        body.append(_plain(cut(m.question, 300), isSubtle=True))
    if m.chosen:
        return _card([*body, _chosen(m.chosen)], summary="Which event is your question about?")
    # Choice titles are Markdown to Microsoft's renderer: a host's title is escaped like any text
    choices = [{"title": f"E-{e.id}: {inert(e.title)}", "value": str(e.id)} for e in m.events]
    body.append({"type": "Input.ChoiceSet", "id": "event_id", "style": "expanded", "wrap": True,
                 "isRequired": True, "errorMessage": "Choose an event, or None of these.",
                 "label": "Events open now",
                 "choices": [*choices, {"title": "None of these", "value": str(EventChoice.NONE)}]})
    send = _submit("Send", EventChoice(m.question_id).to_data())
    return _card(body, [send], summary="Which event is your question about?")


def _feedback_noted(message: FeedbackNoted) -> Activity:
    if message.status is QuestionStatus.FORWARDED:
        return _text(f"Your question {message.ref} is already with the team.")
    return _text("Thanks, your answer to that card was already recorded.")


def _answer(message: Answer) -> Activity:
    """The answer as text, and under it a small card asking the asker whether it helped."""
    heading = "More on your question" if message.follow_up else "An answer to your question"
    if message.supported:  # a colleague's question this person said "me too" to
        heading = "More on the question" if message.follow_up else "An answer to the question"
    quoted = inert(cut_bytes(message.question, QUESTION_BUDGET // 2))
    answer = cut_bytes(message.answer, ANSWER_BUDGET * 3)
    note = "\n\n*The answer was cut to fit in Teams; ask the team for the rest.*" if answer != message.answer else ""
    body = "\n\n".join(inert(line) for line in answer.splitlines() if line.strip())
    supported = ", which you supported" if message.supported else ""
    activity = _text(f"**{heading} {message.ref}{supported}**\n\n> {quoted}\n\n{body}{note}")
    if message.answer_id and message.question_id:  # replies queued before buttons had none
        activity.attachments = _answer_feedback_buttons(message.question_id, message.answer_id).attachments
    return activity


def _add_privacy(activity: Activity, notice: str) -> None:
    """The privacy notice a handler put in the message (welcome, help, a new asker's first
    reply), at the end of its text, or of its card."""
    cards = [a.content for a in activity.attachments or [] if a.content_type == ADAPTIVE_CARD]
    if activity.text or not cards:
        activity.text = f"{activity.text}\n\n{notice}" if activity.text else notice
        return
    cards[0]["body"].append(_block(notice, isSubtle=True, size="Small", separator=True))
def _answer_feedback_buttons(question_id: int, answer_id: int) -> Activity:
    """"Did this answer help?" under an answer (AnswerFeedbackCard: once used, what the asker said)."""

    def choice(title: str, helpful: bool) -> dict[str, Any]:
        return _submit(title, AnswerFeedback(question_id, answer_id, helpful).to_data())

    return _card([_block("Did this answer help?", weight="Bolder")],
                 [choice("Helpful", True), choice("Not helpful", False)], summary="Did this answer help?")


def _help(message: Help) -> Activity:
    """What the bot does, the commands this sender may use by role (one example each), and
    what is kept."""
    lines = [HELP, ""]
    for section in message.sections:
        lines.append(f"**{ROLE_HEADINGS.get(section.role, section.role)}**")
        lines += [f"- **{c.command}**: {c.does} (e.g. *{c.example}*)" for c in section.commands]
        lines.append("")
    return _text("\n".join(lines))


def _digest(message: Digest) -> Activity:
    """Markdown from handlers.publishing, where every colleague's text is already escaped."""
    note = f"*Part {message.part} of {message.parts}*\n\n" if message.parts > 1 else ""
    return _text(note + message.markdown)


def _activity(message: Reply) -> Activity:
    """The activity for each kind of reply; mypy fails here if a kind has no branch."""
    match message:
        case Welcome():
            return _text(WELCOME)
        case Help():
            return _help(message)
        case TooLong(limit=limit, length=length):
            return _text(f"That message is {length:,} characters long; a question can be at most {limit:,}. "
                         "Nothing has been recorded: please shorten it and send it again.")
        case FaqAnswer():
            return _faq_answer(message)
        case Forwarded(ref=ref):
            return _text("I couldn't find a confident answer in the staff FAQ, so I've sent your question to the "
                         f"team (reference **{ref}**). Their answer will come back to you here.")
        case Answer():
            return _answer(message)
        case AnswerFeedbackCard(chosen=chosen):
            return _card([_chosen(chosen)], summary=chosen)
        case Notice(text=text):
            return _text(text)
        case QuestionCard():
            return _moderation_card(message)
        case Board():
            return _board(message)
        case Dismissed(ref=ref, reason=reason):
            return _text(f"The team looked at your question **{ref}** and closed it without a separate answer: "
                         f"{inert(reason)}")
        case FeedbackThanks():
            return _text("Thanks, glad that helped.")
        case FeedbackNoted():
            return _feedback_noted(message)
        case AnswerFeedbackThanks(helpful=helpful):
            return _text("Thanks for telling us." if helpful else
                         "Thanks for telling us. If you still need an answer, ask again with a little more detail.")
        case Digest():
            return _digest(message)
        case EventPicker():
            return _event_choice(message)
        case NotYourQuestion():
            return _text("Only the colleague who asked that question can answer this card.")
        case _:
            assert_never(message)
