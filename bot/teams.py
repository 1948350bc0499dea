"""Activity → product call. Reads who is speaking from the authenticated activity only."""

from __future__ import annotations

from typing import Any

from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.schema import Activity, ChannelAccount

from handlers import asking, commands, feedback, moderation
from handlers.asking import Asker, Said
from handlers.deps import Deps
from handlers.roles import Actor


MAX_ROW_ID = 2**31  # ids are 32-bit INTEGER columns; PostgreSQL rejects larger values outright


class BadSubmission(ValueError):
    """A card submission whose data is not what our cards send."""


class QuestionsBot(ActivityHandler):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if isinstance(activity.value, dict) and activity.value:
            await self._card_submit(activity)
            return
        text = _without_bot_mention(activity)
        await commands.handle_text(self._deps, _said(activity, text))

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        activity = turn_context.activity
        if any(member is not None and member.id == activity.recipient.id for member in members_added):
            await self._welcome(activity)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._welcome(turn_context.activity)

    async def _welcome(self, activity: Activity) -> None:
        # Keyed by conversation: Teams sends both conversationUpdate and installationUpdate
        # when the app is installed, and one welcome is enough.
        await asking.welcome(self._deps, delivery_key=activity.conversation.id, address=_address(activity))

    async def _card_submit(self, activity: Activity) -> None:
        said = _said(activity, "")
        value = activity.value
        if value.get("action") == "moderate":
            try:
                action = moderation.parse_action(value)
            except ValueError:
                await commands.handle_text(self._deps, said)  # not a card of ours: show help
                return
            actor = Actor(id=said.asker.id, aad_id=said.asker.aad_id, name=said.asker.name, email=None)
            await moderation.act(self._deps, said, actor, action)
            return
        if value.get("action") == "answer_feedback":
            try:
                question_id, answer_id, helpful = _answer_feedback(value)
            except BadSubmission:
                await commands.handle_text(self._deps, said)
                return
            await feedback.answer_feedback(
                self._deps, said, question_id=question_id, answer_id=answer_id, helpful=helpful
            )
            return
        try:
            question_id, helpful = _faq_feedback(value)
        except BadSubmission:
            await commands.handle_text(self._deps, said)  # an unknown card: show help
            return
        await feedback.faq_feedback(self._deps, said, question_id=question_id, helpful=helpful)


def _faq_feedback(value: dict[str, Any]) -> tuple[int, bool]:
    """The FAQ answer card's submission: {"action": "faq_feedback", ...}."""
    question_id, helpful = value.get("question_id"), value.get("helpful")
    if value.get("action") != "faq_feedback":
        raise BadSubmission("unknown action")
    if type(question_id) is not int or question_id <= 0 or type(helpful) is not bool:
        raise BadSubmission("faq_feedback needs an integer question_id and a boolean helpful")
    return question_id, helpful


def _answer_feedback(value: dict[str, Any]) -> tuple[int, int, bool]:
    """{"action": "answer_feedback", "question_id": 1, "answer_id": 2, "helpful": true}: ids
    only; whether the sender may use them is decided from the authenticated sender."""
    question_id, answer_id, helpful = value.get("question_id"), value.get("answer_id"), value.get("helpful")
    if any(type(n) is not int or not 0 < n < MAX_ROW_ID for n in (question_id, answer_id)) or type(helpful) is not bool:
        raise BadSubmission("answer_feedback needs integer question_id and answer_id and a boolean helpful")
    return question_id, answer_id, helpful  # type: ignore[return-value]


def _without_bot_mention(activity: Activity) -> str:
    """The message text with this bot's @mention taken out (channels and group chats).

    Not botbuilder's `remove_recipient_mention`: it fails (HTTP 500) on entities it does not
    expect, such as a null entity or a mention without `mentioned`, and it uses the mention's
    text as a regular expression. Here odd entities are skipped and the text removed literally.
    """
    text = activity.text or ""
    bot_id = activity.recipient.id if activity.recipient else None
    for entity in activity.entities or []:
        kind = getattr(entity, "type", None)
        if not isinstance(kind, str) or kind.lower() != "mention":
            continue
        details = getattr(entity, "additional_properties", None) or {}
        mentioned = details.get("mentioned")
        if not isinstance(mentioned, dict) or mentioned.get("id") != bot_id:
            continue
        shown = details.get("text")
        if not isinstance(shown, str) or not shown:
            name = mentioned.get("name")
            shown = f"<at>{name}</at>" if isinstance(name, str) and name else ""
        if shown:
            text = text.replace(shown, "")
    return text.replace("\x00", "")  # never typed by a person; the store could not keep it


def _said(activity: Activity, text: str) -> Said:
    sender = activity.from_property
    return Said(
        delivery_key=f"teams:{activity.conversation.id}:{activity.id}",
        source="teams",
        text=text,
        asker=Asker(id=sender.id, aad_id=sender.aad_object_id, name=sender.name),
        conversation_id=activity.conversation.id,
        conversation_type=activity.conversation.conversation_type,
        address=_address(activity),
        reply_to_id=activity.id,
        meeting_id=_meeting_id(activity),
    )


def _meeting_id(activity: Activity) -> str | None:
    """Teams puts the meeting in channelData for messages in a meeting's chat."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    meeting = data.get("meeting")
    return meeting.get("id") if isinstance(meeting, dict) and isinstance(meeting.get("id"), str) else None


def _address(activity: Activity) -> dict[str, Any]:
    """Where to send later: botbuilder's conversation reference, stored as plain JSON."""
    return TurnContext.get_conversation_reference(activity).serialize()
