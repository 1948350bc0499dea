"""Sending to Teams from outside a turn: outbox job `teams.send` and roster look-ups.

botbuilder 4.17 does not retry a POST, so a 429 or 503 from the Bot Connector would lose the
reply. Every send here runs as an outbox job instead: throttling becomes `RetryLater` with the
connector's Retry-After, and the outbox tries again, durably, until it goes through.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import ConversationReference
from botbuilder.schema.teams import TeamsChannelAccount
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import AuthenticationConstants, ClaimsIdentity, ConnectorFactory
from msrest.exceptions import ClientRequestError, HttpOperationError

from bot.connectors import SharedClientsAuthentication
from bot.render import render
from handlers.deps import Contact
from outbox.errors import PermanentFailure, RetryLater
from store.schema import utcnow

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
PER_CONVERSATION = 1  # one send at a time per conversation: in order, and Teams throttles per conversation
MAX_THROTTLED_CONVERSATIONS = 10_000


class TeamsConnector:
    """Connector clients for proactive sends, one per service URL, reused across jobs."""

    def __init__(self, auth: SharedClientsAuthentication, app_id: str) -> None:
        identity = ClaimsIdentity(
            {AuthenticationConstants.AUDIENCE_CLAIM: app_id, AuthenticationConstants.APP_ID_CLAIM: app_id},
            True,
        )
        self._auth = auth
        self._factory: ConnectorFactory = auth.create_connector_factory(identity)
        self._audience = auth.get_originating_audience()

    async def client(self, service_url: str) -> ConnectorClient:
        """The process-wide client for this service URL (see bot.connectors)."""
        return await self._factory.create(service_url, self._audience)

    async def close(self) -> None:
        await self._auth.close()


class ConversationGate:
    """Per conversation: one send at a time (so messages arrive in order), none while throttled.

    A 429's Retry-After then holds back every job for that conversation (they go back to the
    outbox with the time left), not only the one that was refused; other conversations go on.
    """

    def __init__(self, per_conversation: int = PER_CONVERSATION) -> None:
        self._per_conversation = per_conversation
        self._slots: weakref.WeakValueDictionary[str, asyncio.Semaphore] = weakref.WeakValueDictionary()
        self._resume_at: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, conversation_id: str) -> AsyncIterator[None]:
        slot = self._slots.get(conversation_id)
        if slot is None:
            slot = self._slots[conversation_id] = asyncio.Semaphore(self._per_conversation)
        async with slot:
            wait = self._resume_at.get(conversation_id, 0.0) - time.monotonic()
            if wait > 0:  # checked after the wait for the slot: the send before us may be refused
                raise RetryLater("the connector is throttling this conversation", wait)
            try:
                yield
            except RetryLater as throttled:
                if throttled.retry_after:
                    self._hold_back(conversation_id, throttled.retry_after)
                raise

    def _hold_back(self, conversation_id: str, seconds: float) -> None:
        now = time.monotonic()
        if len(self._resume_at) > MAX_THROTTLED_CONVERSATIONS:
            self._resume_at = {c: t for c, t in self._resume_at.items() if t > now}
        self._resume_at[conversation_id] = max(self._resume_at.get(conversation_id, 0.0), now + seconds)


class TeamsSender:
    """The `teams.send` job: one reply message to one conversation."""

    def __init__(self, connector: TeamsConnector, gate: ConversationGate | None = None) -> None:
        self._connector = connector
        self._gate = gate or ConversationGate()

    async def send(self, payload: dict[str, Any]) -> None:
        reference = ConversationReference().deserialize(payload["address"])
        rendered = render(payload["message"], channel_id=reference.channel_id)
        activity = TurnContext.apply_conversation_reference(rendered, reference)
        reply_to_id = payload.get("reply_to_id")
        conversation_id = reference.conversation.id
        async with self._gate.slot(conversation_id), _connector_errors("send a Teams message"):
            client = await self._connector.client(reference.service_url)
            if reply_to_id:
                activity.reply_to_id = reply_to_id
                await client.conversations.reply_to_activity(conversation_id, reply_to_id, activity)
            else:
                await client.conversations.send_to_conversation(conversation_id, activity)


    async def post(self, address: dict[str, Any], message: dict[str, Any]) -> str:
        """A new message in the conversation (a card to update later); returns its activity id."""
        reference = ConversationReference().deserialize(address)
        rendered = render(message, channel_id=reference.channel_id)
        activity = TurnContext.apply_conversation_reference(rendered, reference)
        activity.reply_to_id = None
        # In a channel, the command's thread id is ";messageid=..."; a card starts its own thread.
        conversation_id = reference.conversation.id.split(";messageid=")[0]
        activity.conversation.id = conversation_id
        async with self._gate.slot(conversation_id), _connector_errors("post a Teams card"):
            client = await self._connector.client(reference.service_url)
            response = await client.conversations.send_to_conversation(conversation_id, activity)
        return response.id

    async def update(self, address: dict[str, Any], activity_id: str, message: dict[str, Any]) -> None:
        """Replace an earlier card in place (no new message in the channel)."""
        reference = ConversationReference().deserialize(address)
        rendered = render(message, channel_id=reference.channel_id)
        activity = TurnContext.apply_conversation_reference(rendered, reference)
        activity.id = activity_id
        activity.reply_to_id = None
        async with self._gate.slot(reference.conversation.id), _connector_errors("update a Teams card"):
            client = await self._connector.client(reference.service_url)
            await client.conversations.update_activity(reference.conversation.id, activity_id, activity)


class TeamsDirectory:
    """Looks colleagues up in the Teams roster of the conversation they asked from."""

    def __init__(self, connector: TeamsConnector) -> None:
        self._connector = connector

    async def lookup(self, address: dict[str, Any], user_id: str) -> Contact | None:
        reference = ConversationReference().deserialize(address)
        try:
            async with _connector_errors("look up a roster member"):
                client = await self._connector.client(reference.service_url)
                member = await client.conversations.get_conversation_member(
                    reference.conversation.id, user_id
                )
        except PermanentFailure as error:
            log.info("roster look-up gave nothing: %s", error)
            return None
        account = TeamsChannelAccount().deserialize(dict(member.serialize(), **member.additional_properties))
        return Contact(name=account.name, email=account.email or account.user_principal_name)


@asynccontextmanager
async def _connector_errors(doing: str) -> AsyncIterator[None]:
    """Map connector failures onto the outbox's retry vocabulary."""
    try:
        yield
    except HttpOperationError as error:
        status = error.response.status_code if error.response is not None else None
        message = f"could not {doing}: HTTP {status}"
        if status is None or status in RETRYABLE_STATUS:
            headers = error.response.headers if error.response is not None else None
            raise RetryLater(message, _retry_after(headers)) from error
        raise PermanentFailure(message) from error
    except (ClientRequestError, OSError, asyncio.TimeoutError) as error:
        raise RetryLater(f"could not {doing}: {type(error).__name__}") from error


def _retry_after(headers: Any) -> float | None:
    """Retry-After in seconds, from either of its two forms (delta-seconds or an HTTP date)."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
    except (TypeError, ValueError):
        return None
