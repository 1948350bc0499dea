"""Sending to Teams from outside a turn: outbox job `teams.send` and roster look-ups.

botbuilder 4.17 does not retry a POST, so a 429 or 503 from the Bot Connector would lose the
reply. Every send here runs as an outbox job instead: throttling becomes `Transient` with the
connector's Retry-After, and the outbox tries again, durably, until it goes through.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bot.connector_http import BotConnectorApi, ConnectorRefused, model_json
from bot.connectors import SharedClientsAuthentication
from bot.render import render
from clock import SYSTEM_CLOCK, Clock
from domain.jobs import ChatReply
from domain.replies import Reply
from errors import Permanent, Transient, parse_retry_after
from handlers.channels import Contact

log = logging.getLogger(__name__)

# Transient: every 5xx, and these. A 401 gets here only when a new token was refused too
# (BotConnectorApi asks for one on the first 401): the connector or the directory is having a
# bad moment, or the app's secret is being rotated; either way it ends, and the reply waits.
RETRYABLE_STATUS = frozenset({401, 408, 429})
# What Teams answers when it cannot start a 1:1 chat with someone: the app is not installed for
# them (403), or the user is unknown in that tenant (404).
NO_PERSONAL_CHAT = frozenset({403, 404})
PER_CONVERSATION = 1  # one send at a time per conversation: in order, and Teams throttles per conversation
MAX_THROTTLED_CONVERSATIONS = 10_000


class TeamsConnector:
    """The bot's connections to the Bot Connector, closed together at shutdown: its own pooled
    session for sends and look-ups outside a turn, and the clients botbuilder's turns share."""

    def __init__(self, auth: SharedClientsAuthentication, clock: Clock = SYSTEM_CLOCK) -> None:
        self._auth = auth
        self.api = BotConnectorApi(auth.outgoing_token)
        self.clock = clock

    async def close(self) -> None:
        await self.api.close()
        await self._auth.close()


class ConversationGate:
    """Per conversation: one send at a time (so messages arrive in order), none while throttled.

    A 429's Retry-After then holds back every job for that conversation (they go back to the
    outbox with the time left), not only the one that was refused; other conversations go on.
    """

    def __init__(self, clock: Clock, per_conversation: int = PER_CONVERSATION) -> None:
        self._clock = clock
        self._per_conversation = per_conversation
        self._slots: weakref.WeakValueDictionary[str, asyncio.Semaphore] = weakref.WeakValueDictionary()
        self._resume_at: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, conversation_id: str) -> AsyncIterator[None]:
        slot = self._slots.get(conversation_id)
        if slot is None:
            slot = self._slots[conversation_id] = asyncio.Semaphore(self._per_conversation)
        async with slot:
            wait = self._resume_at.get(conversation_id, 0.0) - self._clock.monotonic()
            if wait > 0:  # checked after the wait for the slot: the send before us may be refused
                raise Transient("the connector is throttling this conversation", wait)
            try:
                yield
            except Transient as throttled:
                if throttled.retry_after:
                    self._hold_back(conversation_id, throttled.retry_after)
                raise

    def _hold_back(self, conversation_id: str, seconds: float) -> None:
        now = self._clock.monotonic()
        if len(self._resume_at) > MAX_THROTTLED_CONVERSATIONS:
            self._resume_at = {c: t for c, t in self._resume_at.items() if t > now}
        self._resume_at[conversation_id] = max(self._resume_at.get(conversation_id, 0.0), now + seconds)


def is_personal(address: dict[str, Any] | None) -> bool:
    """Whether the address is a 1:1 chat with the bot (Teams marks shared ones as groups; the
    Emulator's chats are 1:1 and carry no type)."""
    conversation = (address or {}).get("conversation") or {}
    return not conversation.get("isGroup") and conversation.get("conversationType") not in SHARED


SHARED = frozenset({"channel", "groupChat"})
THREAD = ";messageid="  # a channel's conversation id, then the thread's first message


def chat_itself(address: dict[str, Any]) -> dict[str, Any]:
    """The conversation an address names, not the channel thread of the message it came from:
    what is sent to it starts a new thread."""
    conversation = address["conversation"]
    return {**address, "conversation": {**conversation, "id": conversation["id"].split(THREAD)[0]}}


class PersonalChats:
    """The 1:1 chat between the bot and a colleague, opened proactively (POST /v3/conversations
    for that one user in their tenant, isGroup false): where a private or anonymous question
    asked in a channel, group chat or meeting chat is acknowledged and answered instead."""

    def __init__(self, connector: TeamsConnector) -> None:
        self._api = connector.api
        self._clock = connector.clock

    async def open(self, address: dict[str, Any]) -> dict[str, Any] | None:
        """The address of the 1:1 chat with the user `address` names (the same chat every time:
        Teams keeps one per user and bot), or None when Teams refuses because the app is not
        installed for them. Other failures raise Transient or Permanent."""
        if is_personal(address):
            return address
        conversation = address.get("conversation") or {}
        user, bot, tenant = address.get("user") or {}, address.get("bot") or {}, conversation.get("tenantId")
        parameters = {"isGroup": False, "bot": bot, "members": [{"id": user.get("id")}],
                      "tenantId": tenant, "channelData": {"tenant": {"id": tenant}}}
        async with _connector_errors("open a personal chat", self._clock):
            try:
                created = await self._api.create_conversation(address["serviceUrl"], parameters)
            except ConnectorRefused as refused:
                if refused.status in NO_PERSONAL_CHAT:
                    log.info("no personal chat: HTTP %s", refused.status)
                    return None
                raise
        if not isinstance(created, dict) or not isinstance(created.get("id"), str) or not created["id"]:
            raise Permanent("the connector opened a personal chat but gave no conversation id")
        personal = {"id": created["id"], "conversationType": "personal", "tenantId": tenant}
        return {**{part: address.get(part) for part in ("channelId", "serviceUrl", "locale", "bot", "user")},
                "conversation": personal}


class TeamsSender:
    """Replies (the `teams.send` job, handlers.replies.send_in_teams), and cards posted and updated."""

    def __init__(self, connector: TeamsConnector, gate: ConversationGate | None = None) -> None:
        self._api = connector.api
        self._clock = connector.clock
        self._gate = gate or ConversationGate(connector.clock)
        self._personal = PersonalChats(connector)

    async def send(self, reply: ChatReply) -> None:
        """A `personal` reply (a private or anonymous question's message) goes to the
        colleague's 1:1 chat, never to the shared conversation it names."""
        address, reply_to_id = reply.address, reply.reply_to_id
        if reply.personal:
            personal = await self._personal.open(reply.address)
            if personal is None:
                raise Permanent("the colleague has no personal chat with the bot; a private "
                                       "message is not posted in a shared conversation")
            address, reply_to_id = personal, None
        activity = _addressed(reply.message, address)
        conversation_id = address["conversation"]["id"]
        async with self._gate.slot(conversation_id), _connector_errors("send a Teams message", self._clock):
            if reply_to_id:
                activity["replyToId"] = reply_to_id
                await self._api.reply(address["serviceUrl"], conversation_id, reply_to_id, activity)
            else:
                await self._api.send(address["serviceUrl"], conversation_id, activity)

    async def post(self, address: dict[str, Any], message: Reply) -> str:
        """A new message in the conversation (a card to update later); returns its activity id."""
        address = chat_itself(address)  # a card starts its own thread, not one in the command's
        activity = _addressed(message, address)
        activity.pop("replyToId", None)
        conversation_id = address["conversation"]["id"]
        async with self._gate.slot(conversation_id), _connector_errors("post a Teams card", self._clock):
            activity_id = await self._api.send(address["serviceUrl"], conversation_id, activity)
        if not activity_id:
            raise Permanent("the connector took the card but gave no activity id to update it by")
        return activity_id

    async def update(self, address: dict[str, Any], activity_id: str, message: Reply) -> None:
        """Replace an earlier card in place (no new message in the channel)."""
        activity = _addressed(message, address)
        activity["id"] = activity_id
        activity.pop("replyToId", None)
        conversation_id = address["conversation"]["id"]
        async with self._gate.slot(conversation_id), _connector_errors("update a Teams card", self._clock):
            await self._api.update(address["serviceUrl"], conversation_id, activity_id, activity)


class TeamsDirectory:
    """Looks colleagues up in the Teams roster of the conversation they asked from.

    A shared channel hosted by the organisation also holds people from other organisations:
    their roster entry names their own tenant, and their email comes from their own directory,
    so it could equal an admin's. Such a member's email is never returned: roles and mail go
    by email, and only the organisation's own directory may vouch for one."""

    def __init__(self, connector: TeamsConnector, tenants: frozenset[str] = frozenset()) -> None:
        self._api = connector.api
        self._clock = connector.clock
        self._tenants = tenants  # lower-case; empty only while auth is off (the Emulator)

    async def lookup(self, address: dict[str, Any], user_id: str) -> Contact | None:
        try:
            async with _connector_errors("look up a roster member", self._clock):
                member = await self._api.member(address["serviceUrl"], address["conversation"]["id"], user_id)
        except Permanent as error:
            log.info("roster look-up gave nothing: %s", error)
            return None
        if not isinstance(member, dict):
            return None
        name = _text(member, "name")
        tenant = (_text(member, "tenantId") or "").lower()  # Teams names it; the activity's was checked
        if self._tenants and tenant and tenant not in self._tenants:
            log.info("roster member of another tenant: their email is not taken")
            return Contact(name=name, email=None)
        return Contact(name=name, email=_text(member, "email") or _text(member, "userPrincipalName"))


@asynccontextmanager
async def _connector_errors(doing: str, clock: Clock) -> AsyncIterator[None]:
    """Map connector failures onto the outbox's retry vocabulary."""
    try:
        yield
    except ConnectorRefused as error:
        message = f"could not {doing}: HTTP {error.status}"
        if error.status in RETRYABLE_STATUS or error.status >= 500:
            raise Transient(message, parse_retry_after(error.headers.get("Retry-After"), clock.now())) from error
        raise Permanent(message) from error
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        raise Transient(f"could not {doing}: {type(error).__name__}") from error


def _addressed(message: Reply, address: dict[str, Any]) -> dict[str, Any]:
    """The message rendered as activity JSON, addressed as TurnContext.apply_conversation_reference
    addresses a reply: from the bot to the user, in the conversation, in reply to the
    reference's activity. The address is botbuilder's own serialised ConversationReference, so
    its parts go in as they are, without a round trip through msrest's models."""
    activity = model_json(render(message, channel_id=address.get("channelId")))
    for field, part in _ADDRESSING:
        if address.get(part) is None:
            activity.pop(field, None)
        else:
            activity[field] = address[part]
    if address.get("activityId"):
        activity["replyToId"] = address["activityId"]
    return activity


# Activity field <- ConversationReference field, set whether present or not (apply_conversation_reference).
_ADDRESSING = (
    ("channelId", "channelId"),
    ("locale", "locale"),
    ("serviceUrl", "serviceUrl"),
    ("conversation", "conversation"),
    ("from", "bot"),
    ("recipient", "user"),
)


def _text(member: dict[str, Any], field: str) -> str | None:
    """A roster member's field, when the connector gave it as a string."""
    value = member.get(field)
    return value if isinstance(value, str) else None
