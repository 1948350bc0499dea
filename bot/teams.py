"""Activity → product call. Reads who is speaking from the authenticated activity only, and
only from activities of the organisation's own Teams tenants."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any, assert_never

from botbuilder.core import ActivityHandler, InvokeResponse, TurnContext
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount

from bot.connector_http import model_json
from bot.render import ADAPTIVE_CARD, invoke_text, updated_card
from domain.cards import VERB, VERBS, AnswerFeedback, Card, CardError, EventChoice, FaqFeedback, Moderate, parse_card
from domain.replies import EventPicker, Notice, Reply
from errors import Refused
from handlers import asking, commands, feedback, moderation
from handlers.asking import Asker, Said
from handlers.channels import TEAMS
from handlers.deps import Deps
from handlers.roles import Actor

MAX_NAME_CHARS = 100  # of a chat's or team's display name in the words for where a question was asked
MAX_CARD_ID = 128  # an activity id, as the endpoint allows for the activity's own (bot/endpoint.py)
CARD_ACTION_INVOKE = "adaptiveCard/action"
INVOKE_MESSAGE = "application/vnd.microsoft.activity.message"
INVOKE_ERROR = "application/vnd.microsoft.error"
TEAMS_CHANNEL = "msteams"
EMULATOR_CHANNEL = "emulator"
REFUSAL = "Sorry, this bot only serves the colleagues of the organisation that runs it, in Microsoft Teams."

log = logging.getLogger(__name__)


class BadSubmission(Refused):
    """A card submission whose data is not what our cards send."""


@dataclass(frozen=True)
class Audience:
    """Whose activities the bot acts on: Teams activities from the organisation's tenants.

    The Bot Framework token proves an activity came through the channel for this bot, not
    from which organisation: any tenant can install a MultiTenant app, and a roster there
    reports whatever email its own directory holds. So identity and roles come only from
    activities this admits; anything else gets a short refusal and touches nothing."""

    tenants: frozenset[str]  # lower-case Entra tenant ids; empty only while auth is off
    channels: frozenset[str]

    @classmethod
    def of(cls, tenants: frozenset[str], *, auth_enabled: bool) -> Audience:
        """Teams only; the Emulator too while auth is off (local trials, loopback only)."""
        channels = {TEAMS_CHANNEL} if auth_enabled else {TEAMS_CHANNEL, EMULATOR_CHANNEL}
        return cls(tenants=tenants, channels=frozenset(channels))

    def admits(self, activity: Activity) -> bool:
        if activity.channel_id not in self.channels:
            return False
        if activity.channel_id != TEAMS_CHANNEL or not self.tenants:
            return True
        said = _tenant_ids(activity)
        return bool(said) and said <= self.tenants


def _tenant_ids(activity: Activity) -> set[str]:
    """Every tenant the activity names: Teams puts it in channelData.tenant.id and in
    conversation.tenantId (kept as an additional property: botbuilder's attribute is tenantID)."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = data.get("tenant")
    conversation = activity.conversation
    extra = getattr(conversation, "additional_properties", None) or {}
    named = (
        tenant.get("id") if isinstance(tenant, dict) else None,
        getattr(conversation, "tenant_id", None),
        extra.get("tenantId"),
    )
    return {value.lower() for value in named if isinstance(value, str)}


class QuestionsBot(ActivityHandler):
    def __init__(self, deps: Deps, audience: Audience) -> None:
        self._deps = deps
        self._audience = audience

    async def on_turn(self, turn_context: TurnContext) -> None:
        if self._audience.admits(turn_context.activity):
            await super().on_turn(turn_context)
            return
        await _refuse(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if isinstance(activity.value, dict) and activity.value:
            await self._card_submit(activity)
            return
        text = _without_bot_mention(activity)
        await commands.handle_text(self._deps, _said(activity, text))

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse | None:
        """A click on an Action.Execute button (Universal Actions): the same actions as
        Action.Submit, answered in the HTTP response, where Teams shows the answer on the card.

        Anything our cards do not send is a 400 that changes nothing. Other invokes get
        botbuilder's answer (501: not implemented)."""
        activity = turn_context.activity
        if activity.name != CARD_ACTION_INVOKE:
            return await super().on_invoke_activity(turn_context)
        try:
            action = _card(_executed(activity.value))
            said = replace(_said(activity, ""), answer_in_turn=True)
            message = await self._card_action(said, action)
        except BadSubmission as problem:
            body = {"statusCode": int(HTTPStatus.BAD_REQUEST), "type": INVOKE_ERROR,
                    "value": {"code": "BadRequest", "message": str(problem)}}
            return InvokeResponse(status=int(HTTPStatus.BAD_REQUEST), body=body)
        card = updated_card(_with_card(action, message))
        if card is not None:  # the clicked card becomes this one: its buttons replaced by the choice
            body = {"statusCode": int(HTTPStatus.OK), "type": ADAPTIVE_CARD, "value": card}
        else:
            body = {"statusCode": int(HTTPStatus.OK), "type": INVOKE_MESSAGE, "value": invoke_text(message)}
        return InvokeResponse(status=int(HTTPStatus.OK), body=body)

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
        await asking.welcome(self._deps, source=TEAMS, delivery_key=activity.conversation.id,
                             address=_address(activity))

    async def _card_submit(self, activity: Activity) -> None:
        """An Action.Submit (a message with `value`): cards posted before the switch to
        Action.Execute, and channels without it. Replies go to the chat; anything that is not
        one of our cards gets the help text."""
        said = _said(activity, "")
        try:
            action = _card(activity.value)
        except BadSubmission:
            await commands.handle_text(self._deps, said)
            return
        message = await self._card_action(said, action)
        card_id = activity.reply_to_id
        if isinstance(card_id, str) and 0 < len(card_id) <= MAX_CARD_ID and card_id.isascii() and card_id.isprintable():
            # the card clicked: its buttons give way to what was chosen
            used = _with_card(action, message)
            await feedback.replace_used_card(self._deps, said, card_id, used)

    async def _card_action(self, said: Said, action: Card) -> Reply:
        """Route a card action to its handler. Who may act is decided by the handler from the
        sender. A new verb in domain.cards is a type error here until it has its branch."""
        match action:
            case Moderate():
                actor = Actor(id=said.asker.id, aad_id=said.asker.aad_id, name=said.asker.name, email=None)
                return await moderation.act(self._deps, said, actor, action)
            case AnswerFeedback():
                return await feedback.answer_feedback(self._deps, said, action)
            case EventChoice():
                return await asking.choose_event(self._deps, said, action)
            case FaqFeedback():
                return await feedback.faq_feedback(self._deps, said, action)
            case _:
                assert_never(action)


async def _refuse(turn_context: TurnContext) -> None:
    """A short refusal, sent in the turn (nothing is recorded, so nothing goes to the outbox):
    on the card for a button, in the chat for a message; other activities get nothing."""
    activity = turn_context.activity
    log.info("refused a %s activity from channel %r, tenants %s", activity.type, activity.channel_id,
             sorted(_tenant_ids(activity)) or "none")
    if activity.type == ActivityTypes.invoke:
        body = {"statusCode": int(HTTPStatus.FORBIDDEN), "type": INVOKE_ERROR,
                "value": {"code": "Forbidden", "message": REFUSAL}}
        response = InvokeResponse(status=int(HTTPStatus.FORBIDDEN), body=body)
        await turn_context.send_activity(Activity(type=ActivityTypes.invoke_response, value=response))
    elif activity.type == ActivityTypes.message:
        try:
            await turn_context.send_activity(REFUSAL)
        except Exception as error:  # noqa: BLE001 - a refusal that cannot be delivered is only logged
            log.warning("could not send the refusal: %s", type(error).__name__)
# How handlers.asking.choose_event words the outcomes that settle the question (a choice made
# now or before); any other answer (an event closed since) leaves the picker as it is.
SETTLED = ("Thanks:", "Noted:", "You already said")


def _with_card(action: Card, message: Reply) -> Reply:
    """The reply, with the event picker's used card once the question is settled."""
    if (isinstance(action, EventChoice) and isinstance(message, Notice) and message.text.startswith(SETTLED)
            and message.card is None):
        return replace(message, card=EventPicker(chosen=message.text.replace("**", "")))
    return message


def _executed(value: Any) -> dict[str, Any]:
    """An `adaptiveCard/action` invoke's value, as the card data Action.Submit would send.

    {"action": {"type": "Action.Execute", "verb": "moderate", "data": {...}}, "trigger":
    "manual"}: the verb becomes the data's VERB (our cards put the same word in both)."""
    if not isinstance(value, dict) or not isinstance(value.get("action"), dict):
        raise BadSubmission("the invoke's value needs an action object")
    action = value["action"]
    if action.get("type") != "Action.Execute":
        raise BadSubmission("only Action.Execute is handled")
    if value.get("trigger", "manual") != "manual":
        raise BadSubmission("only a click acts; this bot's cards ask for no automatic refresh")
    verb, data = action.get("verb"), action.get("data")
    if not isinstance(verb, str) or verb not in VERBS:
        raise BadSubmission("not a verb of this bot's cards")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadSubmission("the action's data must be an object")
    if data.get(VERB, verb) != verb:
        raise BadSubmission("the data's action does not match the verb")
    return {**data, VERB: verb}


def _card(value: Any) -> Card:
    """The card action a submission means; BadSubmission, before anything is done, for data
    our cards do not send."""
    try:
        return parse_card(value)
    except CardError as problem:
        raise BadSubmission(str(problem)) from None


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
        source=TEAMS,
        text=text,
        asker=Asker(id=sender.id, aad_id=sender.aad_object_id, name=sender.name),
        conversation_id=activity.conversation.id,
        conversation_type=activity.conversation.conversation_type,
        address=_address(activity),
        reply_to_id=activity.id,
        meeting_id=_meeting_id(activity),
        place=_place(activity),
    )


def _place(activity: Activity) -> str:
    """Where the activity was said, in words (Said.place): the chat's kind and the display names
    Teams gave (a channel's name comes in channelData for channels other than General, with its
    team's), never an id."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}

    def name_in(part: str) -> str | None:
        value = data.get(part)
        name = value.get("name") if isinstance(value, dict) else None
        return _short(name if isinstance(name, str) else None)

    conversation = activity.conversation
    kind = conversation.conversation_type or ("groupChat" if conversation.is_group else None)
    if kind == "channel":
        name, team = name_in("channel"), name_in("team")
        where = f"the channel “{name}”" if name else "a channel"
        return f"{where} of the team “{team}”" if team else (where if name else "a Teams channel")
    meeting = _meeting_id(activity) is not None
    if kind == "groupChat" or meeting:
        chat, name = "meeting chat" if meeting else "group chat", _short(conversation.name)
        return f"the {chat} “{name}”" if name else f"a {chat}"
    return "a personal chat with the bot"


def _short(text: str | None) -> str | None:
    text = " ".join((text or "").split())
    return text[:MAX_NAME_CHARS] or None


def _meeting_id(activity: Activity) -> str | None:
    """Teams puts the meeting in channelData for messages in a meeting's chat."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    meeting = data.get("meeting")
    return meeting.get("id") if isinstance(meeting, dict) and isinstance(meeting.get("id"), str) else None


def _address(activity: Activity) -> dict[str, Any]:
    """Where to send later: botbuilder's conversation reference, stored as plain JSON, with the
    tenant Teams gives in channelData (a 1:1 chat is opened in that tenant, see bot.sender)."""
    address = model_json(TurnContext.get_conversation_reference(activity))
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = data.get("tenant")
    conversation = address.get("conversation")
    if isinstance(tenant, dict) and isinstance(tenant.get("id"), str) and isinstance(conversation, dict):
        conversation.setdefault("tenantId", tenant["id"])
    return address
