"""A local stand-in for the Bot Framework channel and Azure AD, for tests.

Why it exists: the bot must be tested against the *real* protocols botbuilder
speaks (OpenID metadata + JWKS for inbound JWTs, MSAL client-credentials over
TLS for the outbound token, the Bot Connector REST API for replies), not
against mocks of botbuilder internals.

Why a separate thread: botbuilder fetches OpenID metadata with a synchronous
``requests.get`` and MSAL acquires tokens synchronously, both on the bot's
event loop.  If the fake servers shared that loop the bot would deadlock
waiting for them, so both servers run on their own loop in a daemon thread.
Everything the tests touch (recorded requests, fault scripts, waiters) is
thread-safe, and the ``wait_*`` helpers are awaitable from the test's loop.

Typical use::

    async with FakeChannel.start() as channel:
        env = channel.bot_env("app-id", "secret")       # monkeypatch these
        user = channel.new_user("Ada Lovelace")
        activity = channel.activities.personal_message(user, "hi")
        await channel.deliver(test_client, activity)     # POST /api/messages
        [reply] = await channel.connector.wait_for(1)
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import hashlib
import hmac
import itertools
import json
import random
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import unquote, unquote_plus

import jwt
import trustme
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.hold import Hold

__all__ = [
    "ACTIVITY_POSTS",
    "ACTIVITY_WRITES",
    "AadRequest",
    "ConnectorRequest",
    "FakeAad",
    "FakeChannel",
    "FakeConnector",
    "TeamsActivities",
    "TeamsUser",
    "TestCA",
    "TokenCheck",
    "personal_conversation_id",
]

T = TypeVar("T")
R = TypeVar("R")

#: Connector request kinds that create a message in a conversation.
ACTIVITY_POSTS: frozenset[str] = frozenset({"send", "reply"})
#: Connector request kinds that write an activity (the default target of faults).
ACTIVITY_WRITES: frozenset[str] = frozenset({"send", "reply", "update"})

DEFAULT_CHANNEL_ISSUER = "https://api.botframework.com"
DEFAULT_OAUTH_SCOPE = "https://api.botframework.com"
DEFAULT_ENDORSEMENTS = ("msteams", "emulator", "webchat", "directline")
MULTI_TENANT_LOGIN_TENANT = "botframework.com"
DEFAULT_TENANT_ID = "72f988bf-0000-4000-8000-00000000c0de"


# --------------------------------------------------------------------------
# keys and certificates
# --------------------------------------------------------------------------


@functools.cache
def _rsa_key(purpose: str) -> rsa.RSAPrivateKey:
    """One RSA key per purpose per process: keygen is slow and keys need not differ per test."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _kid_for(key: rsa.RSAPrivateKey) -> str:
    """A stable key id (like a thumbprint) so JWKS caches stay coherent across channels."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _b64url(hashlib.sha256(der).digest()[:15])


def _jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": _int_b64url(numbers.n),
        "e": _int_b64url(numbers.e),
        **extra,
    }


class TestCA:
    """A throw-away CA whose PEM file the bot trusts via REQUESTS_CA_BUNDLE/SSL_CERT_FILE."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path) -> None:
        self._ca = trustme.CA(organization_name="Fake Bot Framework test CA")
        self.ca_bundle: Path = directory / "fake-channel-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_bundle))
        self._server_cert = self._ca.issue_cert("127.0.0.1", "localhost")

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS context for the fake HTTPS server (cert valid for 127.0.0.1 and localhost)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_cert.configure_cert(ctx)
        return ctx

    def client_ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA (for aiohttp already imported)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_bundle))
        return ctx


# --------------------------------------------------------------------------
# thread-safe journal with awaitable waiters
# --------------------------------------------------------------------------


@dataclass
class _Waiter(Generic[R]):
    predicate: Callable[[list[Any]], R | None]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[R]


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


class _Journal(Generic[T]):
    """Append-only record written by the server thread, awaited from the test's loop."""

    def __init__(self, describe: Callable[[T], str]) -> None:
        self._items: list[T] = []
        self._lock = threading.Lock()
        self._waiters: list[_Waiter[Any]] = []
        self._describe = describe

    def append(self, item: T) -> None:
        with self._lock:
            self._items.append(item)
            items = list(self._items)
            fired = []
            for waiter in self._waiters:
                result = waiter.predicate(items)
                if result is not None:
                    fired.append((waiter, result))
            for waiter, _ in fired:
                self._waiters.remove(waiter)
        for waiter, result in fired:
            with contextlib.suppress(RuntimeError):  # the waiting loop already closed
                waiter.loop.call_soon_threadsafe(_resolve, waiter.future, result)

    def snapshot(self) -> list[T]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    async def wait(
        self, predicate: Callable[[list[T]], R | None], *, timeout: float, what: str
    ) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        with self._lock:
            result = predicate(list(self._items))
            if result is not None:
                return result
            waiter = _Waiter(predicate, loop, future)
            self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            seen = "\n  ".join(self._describe(i) for i in self.snapshot()) or "(nothing)"
            raise TimeoutError(
                f"timed out after {timeout}s waiting for {what}; recorded:\n  {seen}"
            ) from None
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)


# --------------------------------------------------------------------------
# fault scripting
# --------------------------------------------------------------------------


@dataclass
class _Fault:
    remaining: int
    status: int | None  # None: drop the connection without a response
    retry_after: float | str | None  # a string goes out as it is (an HTTP date)
    kinds: frozenset[str] | None  # None: any request
    body: Any
    until: float | None = None  # monotonic deadline: an outage that answers every match until then


class _FaultScript:
    """FIFO of scripted faults; each matching request consumes one (an outage, none: it lasts
    until its deadline)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

    def add(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._faults.append(fault)

    def take(self, kind: str) -> _Fault | None:
        with self._lock:
            now = time.monotonic()
            self._faults = [f for f in self._faults if f.until is None or f.until > now]
            for fault in self._faults:
                if fault.kinds is None or kind in fault.kinds:
                    if fault.until is not None:
                        return fault
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> int:
        """Count-based faults not yet used (outages are not counted)."""
        with self._lock:
            return sum(f.remaining for f in self._faults if f.until is None)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


def _fault_response(fault: _Fault, default_body: Any) -> web.Response:
    headers = {}
    if isinstance(fault.retry_after, str):
        headers["Retry-After"] = fault.retry_after
    elif fault.retry_after is not None:
        headers["Retry-After"] = f"{fault.retry_after:g}"
    body = default_body if fault.body is None else fault.body
    assert fault.status is not None
    return web.json_response(body, status=fault.status, headers=headers)


async def _drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the socket without answering, like a load balancer cutting a request."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # Ending the handler by cancellation makes aiohttp skip writing any response.
    raise asyncio.CancelledError


# --------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenCheck:
    """Whether an Authorization header carried a token the fake AAD issued for the audience."""

    valid: bool
    reason: str | None = None
    claims: Mapping[str, Any] | None = None

    @property
    def app_id(self) -> str | None:
        return None if self.claims is None else self.claims.get("appid")


@dataclass(frozen=True)
class AadRequest:
    """One request to the fake login authority (tenant discovery or token endpoint)."""

    method: str
    path: str
    kind: Literal["discovery", "token", "keys", "channel_metadata", "channel_keys", "other"]
    tenant: str | None
    client_id: str | None
    scope: str | None
    status: int
    error: str | None = None


ConnectorKind = Literal[
    "send",  # POST /v3/conversations/{id}/activities (proactive)
    "reply",  # POST /v3/conversations/{id}/activities/{replyToId}
    "update",  # PUT /v3/conversations/{id}/activities/{activityId}
    "delete",  # DELETE /v3/conversations/{id}/activities/{activityId}
    "get_member",  # GET /v3/conversations/{id}/members/{userId}
    "get_members",  # GET /v3/conversations/{id}/members
    "get_paged_members",  # GET /v3/conversations/{id}/pagedmembers
    "get_activity_members",  # GET /v3/conversations/{id}/activities/{activityId}/members
    "create_conversation",  # POST /v3/conversations
    "other",  # anything else (answered 404)
]


@dataclass(frozen=True)
class ConnectorRequest:
    """One request the bot made to the fake Bot Connector, with how it was answered."""

    method: str
    raw_path: str
    kind: ConnectorKind
    conversation_id: str | None  # URL-decoded
    activity_id: str | None  # reply-to id (reply) or target id (update/delete)
    user_id: str | None  # member lookups
    body: Any  # parsed JSON (None when absent or unparsable)
    authorization: str | None
    auth: TokenCheck
    status: int | None  # None: connection dropped
    response: Any = None
    created_id: str | None = None  # id the connector assigned (posts, create_conversation)
    received_at: float = field(default_factory=time.monotonic)  # to check Retry-After pacing

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def text(self) -> str | None:
        return self.body.get("text") if isinstance(self.body, dict) else None

    @property
    def attachments(self) -> list[dict[str, Any]]:
        return list(self.body.get("attachments") or []) if isinstance(self.body, dict) else []


def _describe_connector(r: ConnectorRequest) -> str:
    status = "dropped" if r.status is None else r.status
    return (
        f"{r.method} {r.raw_path} kind={r.kind} status={status} auth="
        f"{'ok' if r.auth.valid else r.auth.reason} text={r.text!r}"
    )


def _describe_aad(r: AadRequest) -> str:
    return f"{r.method} {r.path} kind={r.kind} status={r.status} client={r.client_id} err={r.error}"


# --------------------------------------------------------------------------
# Teams users and activities
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamsUser:
    """A Teams user as the roster API (TeamsChannelAccount) describes them."""

    id: str
    name: str
    aad_object_id: str
    email: str | None
    user_principal_name: str | None
    given_name: str | None
    surname: str | None
    tenant_id: str

    def channel_account(self) -> dict[str, Any]:
        """The `from` shape of inbound activities."""
        return {"id": self.id, "name": self.name, "aadObjectId": self.aad_object_id}

    def roster_json(self) -> dict[str, Any]:
        """The body of GET /v3/conversations/{id}/members/{userId}."""
        return {
            "id": self.id,
            "name": self.name,
            "aadObjectId": self.aad_object_id,
            "email": self.email,
            "userPrincipalName": self.user_principal_name,
            "givenName": self.given_name,
            "surname": self.surname,
            "tenantId": self.tenant_id,
            "userRole": "user",
        }


def personal_conversation_id(user_id: str, app_id: str) -> str:
    """The one 1:1 chat between a user and a bot: Teams gives it the same id every time."""
    digest = hashlib.sha256(f"{user_id}|{app_id}".encode()).digest()
    return "a:1" + _b64url(digest)[:40]


def _teams_timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}0Z"


class TeamsActivities:
    """Builders for inbound Teams activities with the JSON shapes Teams really sends."""

    def __init__(self, *, service_url: str, app_id: str, bot_name: str, tenant_id: str) -> None:
        self.service_url = service_url
        self.app_id = app_id
        self.bot_name = bot_name
        self.tenant_id = tenant_id
        self._ids = itertools.count(int(time.time() * 1000))
        self._lock = threading.Lock()

    @property
    def bot_id(self) -> str:
        return f"28:{self.app_id}"

    def new_activity_id(self) -> str:
        """A fresh Teams-style (millisecond timestamp) message id."""
        with self._lock:
            return str(next(self._ids))

    # conversations ----------------------------------------------------------

    def personal_conversation(self, user: TeamsUser) -> dict[str, Any]:
        return {
            "conversationType": "personal",
            "tenantId": self.tenant_id,
            "id": personal_conversation_id(user.id, self.app_id),
        }

    def channel_conversation(self, *, channel_id: str, root_message_id: str) -> dict[str, Any]:
        return {
            "isGroup": True,
            "conversationType": "channel",
            "tenantId": self.tenant_id,
            "id": f"{channel_id};messageid={root_message_id}",
        }

    def group_chat_conversation(self, conversation_id: str | None = None) -> dict[str, Any]:
        return {
            "isGroup": True,
            "conversationType": "groupChat",
            "tenantId": self.tenant_id,
            "id": conversation_id or f"19:{uuid.uuid4().hex}@thread.v2",
        }

    # activities ---------------------------------------------------------------

    def _base(
        self,
        type_: str,
        user: TeamsUser | None,
        conversation: Mapping[str, Any],
        channel_data: Mapping[str, Any],
        *,
        id: str | None,
        locale: str,
    ) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "type": type_,
            "id": id or self.new_activity_id(),
            "timestamp": _teams_timestamp(),
            "localTimestamp": _teams_timestamp(),
            "serviceUrl": self.service_url,
            "channelId": "msteams",
            "conversation": dict(conversation),
            "recipient": {"id": self.bot_id, "name": self.bot_name},
            "channelData": {**channel_data, "tenant": {"id": self.tenant_id}},
            "locale": locale,
        }
        if user is not None:
            activity["from"] = user.channel_account()
        return activity

    @staticmethod
    def _context(context: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        assert context is not None
        keep = ("team", "channel", "teamsTeamId", "teamsChannelId")
        data = {k: v for k, v in (context.get("channelData") or {}).items() if k in keep}
        return dict(context["conversation"]), data

    def personal_message(
        self,
        user: TeamsUser,
        text: str,
        *,
        id: str | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """A 1:1 chat message from `user` to the bot."""
        activity = self._base(
            "message", user, self.personal_conversation(user), {}, id=id, locale=locale
        )
        activity.update(
            text=text,
            textFormat="plain",
            attachments=[],
            entities=[
                {
                    "type": "clientInfo",
                    "locale": locale,
                    "country": locale.split("-")[-1],
                    "platform": "Web",
                    "timezone": "Europe/Berlin",
                }
            ],
        )
        return activity

    def mention_text(self) -> str:
        return f"<at>{self.bot_name}</at>"

    def mention_entity(self) -> dict[str, Any]:
        return {
            "type": "mention",
            "mentioned": {"id": self.bot_id, "name": self.bot_name},
            "text": self.mention_text(),
        }

    def channel_mention(
        self,
        user: TeamsUser,
        text: str,
        *,
        id: str | None = None,
        team_id: str = "19:questions-team@thread.tacv2",
        team_name: str = "Engineering",
        channel_id: str = "19:general@thread.tacv2",
        channel_name: str | None = None,
        thread_root_id: str | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """A team-channel post "<at>Bot</at> {text}" (a new thread unless thread_root_id).

        Teams names the channel in channelData only for channels other than General."""
        activity_id = id or self.new_activity_id()
        conversation = self.channel_conversation(
            channel_id=channel_id, root_message_id=thread_root_id or activity_id
        )
        channel_data = {
            "teamsChannelId": channel_id,
            "teamsTeamId": team_id,
            "channel": {"id": channel_id, **({"name": channel_name} if channel_name else {})},
            "team": {"id": team_id, "name": team_name},
        }
        activity = self._base(
            "message", user, conversation, channel_data, id=activity_id, locale=locale
        )
        activity.update(
            text=f"{self.mention_text()} {text}",
            textFormat="plain",
            attachments=[
                {
                    "contentType": "text/html",
                    "content": f"<div><div><at>{self.bot_name}</at> {text}</div></div>",
                }
            ],
            entities=[self.mention_entity()],
        )
        if thread_root_id:
            activity["replyToId"] = thread_root_id
        return activity

    def group_chat_message(
        self,
        user: TeamsUser,
        text: str,
        *,
        mention_bot: bool = True,
        id: str | None = None,
        conversation_id: str | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """A group-chat message, by default @mentioning the bot (Teams only delivers those)."""
        activity = self._base(
            "message",
            user,
            self.group_chat_conversation(conversation_id),
            {},
            id=id,
            locale=locale,
        )
        activity.update(
            text=f"{self.mention_text()} {text}" if mention_bot else text,
            textFormat="plain",
            entities=[self.mention_entity()] if mention_bot else [],
        )
        return activity

    def meeting_chat_message(
        self,
        user: TeamsUser,
        text: str,
        *,
        meeting_id: str,
        conversation_id: str,
        chat_name: str | None = None,
        id: str | None = None,
    ) -> dict[str, Any]:
        """A message @mentioning the bot in a meeting's chat: a group chat that Teams marks with
        the meeting in channelData (and names after the meeting when it has a subject)."""
        activity = self.group_chat_message(user, text, id=id, conversation_id=conversation_id)
        if chat_name:
            activity["conversation"]["name"] = chat_name
        activity["channelData"]["meeting"] = {"id": meeting_id}
        return activity

    def card_submit(
        self,
        user: TeamsUser,
        value: Mapping[str, Any],
        *,
        reply_to_id: str,
        context: Mapping[str, Any] | None = None,
        id: str | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """An Action.Submit from a card the bot posted (message with `value`, no text).

        `context` is an earlier activity whose conversation/team/channel to reuse
        (default: the user's personal chat)."""
        channel_data: dict[str, Any]
        if context is None:
            conversation, channel_data = self.personal_conversation(user), {}
        else:
            conversation, channel_data = self._context(context)
        channel_data = {
            **channel_data,
            "source": {"name": "message"},
            "legacy": {"replyToId": reply_to_id},
        }
        activity = self._base("message", user, conversation, channel_data, id=id, locale=locale)
        activity.update(replyToId=reply_to_id, value=dict(value))
        return activity

    def invoke_action(
        self,
        user: TeamsUser,
        verb: str,
        data: Mapping[str, Any] | None = None,
        *,
        reply_to_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        id: str | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """An `adaptiveCard/action` invoke (Action.Execute); the bot answers in the HTTP body."""
        channel_data: dict[str, Any]
        if context is None:
            conversation, channel_data = self.personal_conversation(user), {}
        else:
            conversation, channel_data = self._context(context)
        channel_data = {**channel_data, "source": {"name": "message"}}
        activity = self._base("invoke", user, conversation, channel_data, id=id, locale=locale)
        activity.update(
            name="adaptiveCard/action",
            value={
                "action": {"type": "Action.Execute", "verb": verb, "data": dict(data or {})},
                "trigger": "manual",
            },
        )
        if reply_to_id:
            activity["replyToId"] = reply_to_id
        return activity

    def bot_added(
        self,
        user: TeamsUser,
        *,
        conversation_type: Literal["personal", "channel", "groupChat"] = "personal",
        team_id: str = "19:questions-team@thread.tacv2",
        channel_id: str = "19:general@thread.tacv2",
        id: str | None = None,
    ) -> dict[str, Any]:
        """conversationUpdate with the bot in membersAdded (install / added to team or chat)."""
        channel_data: dict[str, Any] = {}
        if conversation_type == "personal":
            conversation = self.personal_conversation(user)
        elif conversation_type == "channel":
            conversation = {
                "isGroup": True,
                "conversationType": "channel",
                "tenantId": self.tenant_id,
                "id": channel_id,
            }
            channel_data = {
                "team": {"id": team_id, "name": "Engineering", "aadGroupId": str(uuid.uuid4())},
                "eventType": "teamMemberAdded",
            }
        else:
            conversation = self.group_chat_conversation()
        activity = self._base(
            "conversationUpdate", user, conversation, channel_data, id=id, locale="en-US"
        )
        activity["membersAdded"] = [{"id": self.bot_id}]
        return activity

    def installation_update(
        self,
        user: TeamsUser,
        *,
        action: Literal["add", "remove", "add-upgrade", "remove-upgrade"] = "add",
        id: str | None = None,
    ) -> dict[str, Any]:
        """installationUpdate sent when the app is installed in the user's personal scope."""
        activity = self._base(
            "installationUpdate",
            user,
            self.personal_conversation(user),
            {"source": {"name": "message"}},
            id=id,
            locale="en-US",
        )
        activity["action"] = action
        return activity


# --------------------------------------------------------------------------
# the two fake services
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _RegisteredApp:
    app_id: str
    secret: str
    tenant_id: str | None  # None: multi-tenant


class FakeAad:
    """The login authority (tenant discovery + client-credentials token endpoint) and
    the Bot Framework OpenID metadata/JWKS, all on the HTTPS server."""

    def __init__(self, owner: FakeChannel) -> None:
        self._owner = owner
        self.requests: _Journal[AadRequest] = _Journal(_describe_aad)
        self._faults = _FaultScript()
        self._apps: dict[str, _RegisteredApp] = {}
        self._apps_lock = threading.Lock()
        self.signing_key = _rsa_key("aad")
        self.kid = _kid_for(self.signing_key)
        #: Seconds the access tokens it issues live (their exp and the response's expires_in).
        self.token_lifetime = 3600
        #: The `uti` (token id) of every access token issued, so a connector can revoke them.
        self.issued: set[str] = set()

    # configuration ---------------------------------------------------------------

    def register_app(self, app_id: str, secret: str, *, tenant_id: str | None = None) -> None:
        """Make client_credentials succeed for this id/secret (single-tenant if tenant_id)."""
        with self._apps_lock:
            self._apps[app_id] = _RegisteredApp(app_id, secret, tenant_id)

    def fail_next(
        self, count: int = 1, *, status: int = 503, retry_after: float | None = None
    ) -> None:
        """Answer the next `count` token requests with `status` (429/5xx like AAD throttling)."""
        self._faults.add(_Fault(count, status, retry_after, frozenset({"token"}), None))

    # inspection ----------------------------------------------------------------

    def token_requests(self) -> list[AadRequest]:
        return [r for r in self.requests.snapshot() if r.kind == "token"]

    @property
    def token_request_count(self) -> int:
        """Token requests that were answered with a token (proves the bot caches)."""
        return sum(1 for r in self.token_requests() if r.status == 200)

    async def wait_for_token_requests(self, n: int, *, timeout: float = 10.0) -> list[AadRequest]:
        def enough(items: list[AadRequest]) -> list[AadRequest] | None:
            tokens = [r for r in items if r.kind == "token"]
            return tokens[:n] if len(tokens) >= n else None

        return await self.requests.wait(enough, timeout=timeout, what=f"{n} token requests")

    def issuer(self, tenant: str) -> str:
        return f"{self._owner.login_base}/{tenant}/v2.0"

    def mint_access_token(
        self, app_id: str, audience: str, *, tenant: str, lifetime: int = 3600
    ) -> str:
        """A v1-style AAD app token, as the token endpoint issues it."""
        now = int(time.time())
        claims = {
            "aud": audience,
            "iss": self.issuer(tenant),
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime,
            "appid": app_id,
            "appidacr": "1",
            "idtyp": "app",
            "tid": tenant,
            "sub": app_id,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, app_id)),
            "ver": "1.0",
            "uti": secrets.token_urlsafe(16),
        }
        with self._apps_lock:
            self.issued.add(str(claims["uti"]))
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": self.kid})

    def check_token(self, authorization: str | None, *, audience: str) -> TokenCheck:
        """Validate an outbound Authorization header the way the real connector would."""
        if not authorization:
            return TokenCheck(False, "missing Authorization header")
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not token:
            return TokenCheck(False, f"not a Bearer token: {authorization[:20]!r}")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.kid:
                return TokenCheck(False, f"unknown kid {header.get('kid')!r}")
            claims = jwt.decode(
                token,
                self.signing_key.public_key(),
                algorithms=["RS256"],
                audience=audience,
                options={"require": ["exp", "nbf", "iss", "aud", "appid"]},
            )
        except jwt.PyJWTError as exc:
            return TokenCheck(False, f"{type(exc).__name__}: {exc}")
        if not str(claims["iss"]).startswith(self._owner.login_base + "/"):
            return TokenCheck(False, f"issuer {claims['iss']!r} is not this authority", claims)
        with self._apps_lock:
            known = claims["appid"] in self._apps
        if not known:
            return TokenCheck(False, f"appid {claims['appid']!r} not registered", claims)
        return TokenCheck(True, None, claims)

    # HTTP handlers -----------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/.well-known/openidconfiguration", self._channel_metadata),
            web.get("/v1/.well-known/keys", self._channel_keys),
            web.get("/{tenant}/v2.0/.well-known/openid-configuration", self._tenant_discovery),
            web.get("/{tenant}/discovery/v2.0/keys", self._aad_keys),
            web.post("/{tenant}/oauth2/v2.0/token", self._token),
        ]

    def _log(self, request: web.Request, kind: Any, status: int, **kw: Any) -> None:
        self.requests.append(
            AadRequest(
                method=request.method,
                path=request.path,
                kind=kind,
                tenant=request.match_info.get("tenant"),
                client_id=kw.get("client_id"),
                scope=kw.get("scope"),
                status=status,
                error=kw.get("error"),
            )
        )

    async def _channel_metadata(self, request: web.Request) -> web.Response:
        base = self._owner.login_base
        self._log(request, "channel_metadata", 200)
        return web.json_response(
            {
                "issuer": self._owner.channel_issuer,
                "authorization_endpoint": f"{base}/v1/authorize",
                "jwks_uri": f"{base}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _channel_keys(self, request: web.Request) -> web.Response:
        self._log(request, "channel_keys", 200)
        owner = self._owner
        key = _jwk(owner.channel_key, owner.channel_kid, endorsements=list(owner.endorsements))
        return web.json_response({"keys": [key]})

    async def _tenant_discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"{self._owner.login_base}/{tenant}"
        self._log(request, "discovery", 200)
        return web.json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": self.issuer(tenant),
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "ver"],
                "tenant_region_scope": "EU",
            }
        )

    async def _aad_keys(self, request: web.Request) -> web.Response:
        self._log(request, "keys", 200)
        return web.json_response({"keys": [_jwk(self.signing_key, self.kid)]})

    @staticmethod
    def _aad_error(status: int, error: str, code: int, description: str) -> web.Response:
        return web.json_response(
            {
                "error": error,
                "error_description": f"AADSTS{code}: {description}",
                "error_codes": [code],
                "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
                "trace_id": str(uuid.uuid4()),
                "correlation_id": str(uuid.uuid4()),
            },
            status=status,
        )

    async def _token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = await request.post()
        client_id = str(form.get("client_id") or "")
        secret = str(form.get("client_secret") or "")
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):  # client_secret_basic
            decoded = base64.b64decode(basic[6:]).decode()
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        scope = str(form.get("scope") or "")
        fault = self._faults.take("token")
        if fault is not None:
            assert fault.status is not None
            self._log(
                request,
                "token",
                fault.status,
                client_id=client_id,
                scope=scope,
                error="scripted fault",
            )
            return _fault_response(
                fault,
                {
                    "error": "temporarily_unavailable",
                    "error_description": "AADSTS50196: scripted fault from FakeChannel.",
                    "error_codes": [50196],
                },
            )

        def fail(status: int, error: str, code: int, description: str) -> web.Response:
            self._log(request, "token", status, client_id=client_id, scope=scope, error=error)
            return self._aad_error(status, error, code, description)

        if form.get("grant_type") != "client_credentials":
            return fail(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{form.get('grant_type')!s}'.",
            )
        with self._apps_lock:
            app = self._apps.get(client_id)
        if app is None or (app.tenant_id is not None and app.tenant_id != tenant):
            return fail(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant}'.",
            )
        if not secret or not hmac.compare_digest(secret, app.secret):
            return fail(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the "
                f"request is the client secret value, not the client secret ID, for a "
                f"secret added to app '{client_id}'.",
            )
        defaults = [s for s in scope.split() if s.endswith("/.default")]
        if len(defaults) != 1:
            return fail(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the resource "
                "identifier (application ID URI).",
            )
        audience = defaults[0][: -len("/.default")]
        token = self.mint_access_token(client_id, audience, tenant=tenant, lifetime=self.token_lifetime)
        self._log(request, "token", 200, client_id=client_id, scope=scope)
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            }
        )


class FakeConnector:
    """The Bot Connector REST API (the activities' serviceUrl), recording every call."""

    def __init__(self, owner: FakeChannel) -> None:
        self._owner = owner
        self.requests: _Journal[ConnectorRequest] = _Journal(_describe_connector)
        self._faults = _FaultScript()
        self._ids = itertools.count(int(time.time() * 1000) + 7_000_000)
        self._hold: Hold | None = None
        self._ids_lock = threading.Lock()
        #: Answer requests without a valid AAD token with 401 (like the real service).
        self.enforce_auth = True
        #: Seconds (low, high) each activity write takes to answer, drawn uniformly: the real
        #: connector takes tens to hundreds of milliseconds, the window a crash can fall in.
        self.latency: tuple[float, float] = (0.0, 0.0)
        self._revoked: frozenset[str] = frozenset()
        #: Users who have not installed the bot: creating a 1:1 chat with them is refused (403).
        self.not_installed_for: set[str] = set()

    # scripting -----------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 429,
        retry_after: float | str | None = None,
        kinds: Collection[str] | None = ACTIVITY_WRITES,
        body: Any = None,
    ) -> None:
        """Answer the next `count` requests of `kinds` (None: any) with `status`.

        `retry_after` becomes a Retry-After header: seconds (formatted with %g), or a string
        sent as it is (an HTTP date)."""
        self._faults.add(
            _Fault(count, status, retry_after, None if kinds is None else frozenset(kinds), body)
        )

    def fail_for(
        self, seconds: float, *, status: int | None = 503, kinds: Collection[str] | None = ACTIVITY_WRITES
    ) -> None:
        """An outage: for `seconds`, answer every request of `kinds` with `status` and no
        Retry-After (None: drop the connection), however often the bot tries."""
        self._faults.add(
            _Fault(1, status, None, None if kinds is None else frozenset(kinds), None,
                   until=time.monotonic() + seconds)
        )

    def clear_faults(self) -> None:
        """End every scripted fault and outage now."""
        self._faults.clear()

    def revoke_tokens(self) -> None:
        """Refuse (401) every token the authority has issued so far, as after a secret or key
        rotation: only a token requested from now on is accepted."""
        with self._owner.aad._apps_lock:
            self._revoked = frozenset(self._owner.aad.issued)

    def drop_next(self, count: int = 1, *, kinds: Collection[str] | None = ACTIVITY_WRITES) -> None:
        """Close the connection without a response for the next `count` matching requests."""
        self._faults.add(
            _Fault(count, None, None, None if kinds is None else frozenset(kinds), None)
        )

    def hold_next(self, kinds: Collection[str] = ACTIVITY_WRITES) -> Hold:
        """Keep the next request of `kinds` waiting, unanswered and not yet accepted, until
        `release()`: the moment to kill the bot "before the connector took the reply". A
        request whose client died while held is recorded as dropped, never as accepted."""
        self._hold = Hold(frozenset(kinds))
        return self._hold

    @property
    def pending_faults(self) -> int:
        return self._faults.pending()

    # inspection ----------------------------------------------------------------

    def recorded(self, *kinds: str, ok: bool | None = None) -> list[ConnectorRequest]:
        """Recorded requests, optionally filtered by kind and success."""
        return [
            r
            for r in self.requests.snapshot()
            if (not kinds or r.kind in kinds) and (ok is None or r.ok == ok)
        ]

    def posts(self) -> list[ConnectorRequest]:
        """Successful message posts (proactive sends and replies), in arrival order."""
        return self.recorded(*ACTIVITY_POSTS, ok=True)

    async def wait_for(
        self,
        n: int = 1,
        *,
        kinds: Collection[str] = ACTIVITY_POSTS,
        timeout: float = 10.0,
    ) -> list[ConnectorRequest]:
        """Return the first `n` successful requests of `kinds` once they have arrived."""
        wanted = frozenset(kinds)

        def enough(items: list[ConnectorRequest]) -> list[ConnectorRequest] | None:
            hits = [r for r in items if r.kind in wanted and r.ok]
            return hits[:n] if len(hits) >= n else None

        return await self.requests.wait(
            enough, timeout=timeout, what=f"{n} successful {sorted(wanted)} requests"
        )

    async def wait_until(
        self,
        predicate: Callable[[ConnectorRequest], bool],
        *,
        n: int = 1,
        timeout: float = 10.0,
    ) -> list[ConnectorRequest]:
        """Return the first `n` recorded requests (any outcome) matching `predicate`."""

        def enough(items: list[ConnectorRequest]) -> list[ConnectorRequest] | None:
            hits = [r for r in items if predicate(r)]
            return hits[:n] if len(hits) >= n else None

        return await self.requests.wait(enough, timeout=timeout, what=f"{n} matching requests")

    # HTTP ---------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/v3/{tail:.*}", self._dispatch)]

    def _new_id(self) -> str:
        with self._ids_lock:
            return str(next(self._ids))

    @staticmethod
    def _classify(method: str, segments: list[str]) -> tuple[ConnectorKind, dict[str, str]]:
        """Map /v3/... onto the connector operation (segments are URL-decoded)."""
        n = len(segments)
        if segments[:1] != ["conversations"]:
            return "other", {}
        if n == 1:
            return ("create_conversation" if method == "POST" else "other"), {}
        cid = {"conversation_id": segments[1]}
        if n == 3 and segments[2] == "activities" and method == "POST":
            return "send", cid
        if n == 4 and segments[2] == "activities":
            by_method: dict[str, ConnectorKind] = {"POST": "reply", "PUT": "update", "DELETE": "delete"}
            kind = by_method.get(method, "other")
            return kind, {**cid, "activity_id": segments[3]}
        if n == 5 and segments[2] == "activities" and segments[4] == "members":
            return "get_activity_members", {**cid, "activity_id": segments[3]}
        if n == 3 and segments[2] == "members" and method == "GET":
            return "get_members", cid
        if n == 3 and segments[2] == "pagedmembers" and method == "GET":
            return "get_paged_members", cid
        if n == 4 and segments[2] == "members" and method == "GET":
            return "get_member", {**cid, "user_id": segments[3]}
        return "other", cid

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        segments = [unquote(s) for s in raw_path.split("/")[2:]]  # drop "" and "v3"
        kind, ids = self._classify(request.method, segments)
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
        authorization = request.headers.get("Authorization")
        auth = self._owner.aad.check_token(authorization, audience=self._owner.oauth_scope)
        if auth.valid and auth.claims is not None and auth.claims.get("uti") in self._revoked:
            auth = TokenCheck(False, "token revoked", auth.claims)
        low, high = self.latency
        if high > 0 and kind in ACTIVITY_WRITES:
            await asyncio.sleep(random.uniform(low, high))

        def record(status: int | None, response: Any = None, created: str | None = None) -> None:
            self.requests.append(
                ConnectorRequest(
                    method=request.method,
                    raw_path=raw_path,
                    kind=kind,
                    conversation_id=ids.get("conversation_id"),
                    activity_id=ids.get("activity_id"),
                    user_id=ids.get("user_id"),
                    body=body,
                    authorization=authorization,
                    auth=auth,
                    status=status,
                    response=response,
                    created_id=created,
                )
            )

        if self.enforce_auth and not auth.valid:
            payload = {"message": "Authorization has been denied for this request."}
            record(401, payload)
            return web.json_response(payload, status=401)

        hold, self._hold = (self._hold, None) if self._hold and kind in self._hold.kinds else (None, self._hold)
        if hold is not None:
            await hold.wait_here()
            if await hold.client_gone(request):
                record(None)
                return web.Response(status=599)

        fault = self._faults.take(kind)
        if fault is not None:
            if fault.status is None:
                record(None)
                return await _drop_connection(request)
            default = {
                "error": {
                    "code": "TooManyRequests" if fault.status == 429 else "ServiceError",
                    "message": f"Scripted fault {fault.status} from FakeChannel.",
                }
            }
            response = _fault_response(fault, default)
            record(fault.status, fault.body if fault.body is not None else default)
            return response

        status, payload, created = self._answer(kind, ids, body)
        record(status, payload, created)
        if payload is None:
            return web.Response(status=status)
        return web.json_response(payload, status=status)

    def _answer(self, kind: str, ids: Mapping[str, str], body: Any) -> tuple[int, Any, str | None]:
        if kind in ("send", "reply"):
            if not isinstance(body, dict) or not body.get("type"):
                return (
                    400,
                    {"error": {"code": "BadArgument", "message": "Activity is missing"}},
                    None,
                )
            new_id = self._new_id()
            return 201, {"id": new_id}, new_id
        if kind == "update":
            return 200, {"id": ids["activity_id"]}, None
        if kind == "delete":
            return 200, None, None
        if kind == "create_conversation":
            personal = self._personal_chat(body)
            if isinstance(personal, tuple):
                return personal
            new_id = personal or "a:1" + secrets.token_urlsafe(30)
            payload: dict[str, Any] = {"id": new_id}
            if isinstance(body, dict) and body.get("activity"):
                payload["activityId"] = self._new_id()
            return 201, payload, new_id
        if kind == "get_member":
            user = self._owner.member(ids["conversation_id"], ids["user_id"])
            if user is None:
                return (
                    404,
                    {
                        "error": {
                            "code": "MemberNotFoundInConversation",
                            "message": "The member could not be found in the conversation.",
                        }
                    },
                    None,
                )
            return 200, user.roster_json(), None
        if kind in ("get_members", "get_activity_members"):
            users = self._owner.members(ids["conversation_id"])
            return 200, [u.roster_json() for u in users], None
        if kind == "get_paged_members":
            users = self._owner.members(ids["conversation_id"])
            return 200, {"members": [u.roster_json() for u in users]}, None
        return 404, {"error": {"code": "NotFound", "message": "Unknown connector operation"}}, None

    def _personal_chat(self, body: Any) -> str | tuple[int, Any, None] | None:
        """POST /v3/conversations for one user with isGroup false is Teams' proactive 1:1 chat:
        the same conversation id every time, or 403 when the user has not installed the app
        (Teams cannot start a chat with someone who does not have the bot). None: another kind
        of conversation (a new id each time)."""
        if not isinstance(body, dict) or body.get("isGroup") or len(body.get("members") or []) != 1:
            return None
        member, bot = body["members"][0], body.get("bot") or {}
        tenant = body.get("tenantId") or ((body.get("channelData") or {}).get("tenant") or {}).get("id")
        if not isinstance(member, dict) or not member.get("id") or not str(bot.get("id", "")).startswith("28:"):
            return 400, {"error": {"code": "BadArgument", "message": "members and bot are required"}}, None
        if not tenant:
            return 400, {"error": {"code": "BadArgument", "message": "Tenant id is required"}}, None
        if member["id"] in self.not_installed_for:
            return 403, {"error": {"code": "Forbidden",
                                   "message": "The bot is not installed for this user."}}, None
        return personal_conversation_id(member["id"], bot["id"].removeprefix("28:"))


# --------------------------------------------------------------------------
# the channel
# --------------------------------------------------------------------------


class FakeChannel:
    """Bot Framework channel + Azure AD, over real HTTP(S), for one test."""

    def __init__(
        self,
        *,
        directory: Path,
        channel_issuer: str = DEFAULT_CHANNEL_ISSUER,
        oauth_scope: str = DEFAULT_OAUTH_SCOPE,
        tenant_id: str = DEFAULT_TENANT_ID,
        endorsements: Iterable[str] = DEFAULT_ENDORSEMENTS,
        bot_name: str = "Questions Bot",
    ) -> None:
        self.ca = TestCA(directory)
        self.channel_issuer = channel_issuer
        self.oauth_scope = oauth_scope
        self.tenant_id = tenant_id
        self.endorsements = tuple(endorsements)
        self.bot_name = bot_name
        self.channel_key = _rsa_key("channel")
        self.channel_kid = _kid_for(self.channel_key)
        self.rogue_key = _rsa_key("rogue")
        # Makes the metadata URL unique per instance: JwtTokenExtractor caches by URL forever.
        self._instance = secrets.token_hex(6)
        self.aad = FakeAad(self)
        self.connector = FakeConnector(self)
        self.default_app_id: str | None = None
        self._roster_lock = threading.Lock()
        self._global_roster: dict[str, TeamsUser] = {}
        self._conversation_roster: dict[str, dict[str, TeamsUser]] = {}
        self._user_numbers = itertools.count(1)
        self._activities: dict[str, TeamsActivities] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self.login_base = ""  # https://127.0.0.1:<port>
        self.service_url = ""  # http://127.0.0.1:<port>/

    # lifecycle -------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        *,
        channel_issuer: str = DEFAULT_CHANNEL_ISSUER,
        oauth_scope: str = DEFAULT_OAUTH_SCOPE,
        tenant_id: str = DEFAULT_TENANT_ID,
        endorsements: Iterable[str] = DEFAULT_ENDORSEMENTS,
        bot_name: str = "Questions Bot",
    ) -> AsyncIterator[FakeChannel]:
        """Start both servers on a private loop/thread; stop them on exit."""
        with tempfile.TemporaryDirectory(prefix="fake-channel-") as tmp:
            # Constructing makes a CA and (once per process) RSA keys: keep it off the loop.
            channel = await asyncio.to_thread(
                lambda: cls(
                    directory=Path(tmp),
                    channel_issuer=channel_issuer,
                    oauth_scope=oauth_scope,
                    tenant_id=tenant_id,
                    endorsements=endorsements,
                    bot_name=bot_name,
                )
            )
            await channel._start()
            try:
                yield channel
            finally:
                await channel._stop()

    @property
    def ca_bundle(self) -> Path:
        return self.ca.ca_bundle

    async def _start(self) -> None:
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="fake-bot-framework-channel", daemon=True
        )
        self._thread.start()
        await asyncio.wrap_future(ready)

    def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._open_servers())
        except Exception as exc:  # noqa: BLE001 - any start-up failure goes to the awaiting test
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _open_servers(self) -> None:
        login_app = web.Application()
        login_app.add_routes(self.aad.routes())
        connector_app = web.Application()
        connector_app.add_routes(self.connector.routes())
        for app, ssl_context in (
            (login_app, self.ca.server_ssl_context()),
            (connector_app, None),
        ):
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
            await site.start()
            self._runners.append(runner)
        login_port = self._runners[0].addresses[0][1]
        connector_port = self._runners[1].addresses[0][1]
        self.login_base = f"https://127.0.0.1:{login_port}"
        self.service_url = f"http://127.0.0.1:{connector_port}/"

    async def _close_servers(self) -> None:
        for runner in reversed(self._runners):
            # Clients (MSAL's requests session, the bot's aiohttp pool) keep idle keep-alive
            # connections open; a graceful TLS close would wait for their close_notify, so
            # cut them instead, otherwise the loop stops with unclosed transports.
            server = runner.server
            for handler in server.connections if server is not None else ():
                if handler.transport is not None:
                    handler.transport.abort()
            await runner.cleanup()
        self._runners.clear()
        for _ in range(3):  # let connection_lost callbacks run before the loop stops
            await asyncio.sleep(0)

    async def _stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._close_servers(), loop))
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)
        self._loop = self._thread = None

    # bot configuration ----------------------------------------------------------

    @property
    def channel_metadata_url(self) -> str:
        return f"{self.login_base}/v1/.well-known/openidconfiguration?instance={self._instance}"

    @property
    def emulator_metadata_url(self) -> str:
        return (
            f"{self.login_base}/{MULTI_TENANT_LOGIN_TENANT}/v2.0/.well-known/"
            f"openid-configuration?instance={self._instance}"
        )

    def login_url(self, single_tenant_id: str | None = None) -> str:
        """The MSAL authority botbuilder will use (whole URL, for non-public clouds)."""
        return f"{self.login_base}/{single_tenant_id or MULTI_TENANT_LOGIN_TENANT}"

    def register_app(
        self, app_id: str, app_password: str, *, single_tenant_id: str | None = None
    ) -> None:
        """Let `app_id` get tokens; the first one registered becomes the default bot."""
        self.aad.register_app(app_id, app_password, tenant_id=single_tenant_id)
        if self.default_app_id is None:
            self.default_app_id = app_id

    def bot_env(
        self, app_id: str, app_password: str, *, single_tenant_id: str | None = None
    ) -> dict[str, str]:
        """Environment for a bot that should trust this channel (also registers the app)."""
        self.register_app(app_id, app_password, single_tenant_id=single_tenant_id)
        env = {
            "MicrosoftAppId": app_id,
            "MicrosoftAppPassword": app_password,
            "MicrosoftAppType": "SingleTenant" if single_tenant_id else "MultiTenant",
            "ALLOWED_TENANT_IDS": self.tenant_id,  # the organisation this channel's users are in
            "TO_CHANNEL_FROM_BOT_LOGIN_URL": self.login_url(single_tenant_id),
            "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": self.oauth_scope,
            "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": self.channel_issuer,
            "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": self.channel_metadata_url,
            "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL": self.emulator_metadata_url,
            "OAUTH_URL": f"{self.login_base}/oauth-not-implemented",
            "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
            "SSL_CERT_FILE": str(self.ca_bundle),
        }
        if single_tenant_id:
            env["MicrosoftAppTenantId"] = single_tenant_id
        return env

    def bot_settings(
        self, app_id: str, app_password: str, *, single_tenant_id: str | None = None
    ) -> Any:
        """bot_env as the attribute object ConfigurationBotFrameworkAuthentication reads."""
        from types import SimpleNamespace

        env = self.bot_env(app_id, app_password, single_tenant_id=single_tenant_id)
        settings = SimpleNamespace(
            APP_ID=app_id,
            APP_PASSWORD=app_password,
            APP_TYPE=env["MicrosoftAppType"],
            TO_CHANNEL_FROM_BOT_LOGIN_URL=env["TO_CHANNEL_FROM_BOT_LOGIN_URL"],
            TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=env["TO_CHANNEL_FROM_BOT_OAUTH_SCOPE"],
            TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=env["TO_BOT_FROM_CHANNEL_TOKEN_ISSUER"],
            TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=env["TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL"],
            TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=env[
                "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL"
            ],
            OAUTH_URL=env["OAUTH_URL"],
        )
        if single_tenant_id:
            settings.APP_TENANTID = single_tenant_id
        return settings

    # inbound tokens ---------------------------------------------------------------

    def bearer(
        self,
        app_id: str | None = None,
        service_url: str | None = None,
        *,
        sign_with: Literal["channel", "rogue", "aad"] = "channel",
        kid: str | None | Literal["default"] = "default",
        alg: Literal["RS256", "none", "HS256"] = "RS256",
        expired: bool = False,
        lifetime: int = 3600,
        **claims: Any,
    ) -> str:
        """ "Bearer <jwt>" as the channel sends it to the bot.

        Defaults produce a valid token. Negative cases: sign_with="rogue" (unpublished
        key, same kid), kid=None (no kid) or kid="x" (unknown), alg="none" / "HS256"
        (HMAC keyed with the public key PEM), expired=True (well past the 5-minute
        leeway), and claim overrides such as aud=, iss=, serviceurl=; a claim
        override of None removes that claim."""
        app_id = app_id or self._require_default_app()
        now = int(time.time())
        payload: dict[str, Any] = {
            "serviceurl": service_url or self.service_url,
            "nbf": now - 5,
            "exp": now + lifetime,
            "iss": self.channel_issuer,
            "aud": app_id,
        }
        if expired:
            payload.update(nbf=now - 7200, exp=now - 3600)
        for name, value in claims.items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        header: dict[str, Any] = {"typ": "JWT", "alg": alg}
        if kid == "default":
            header["kid"] = self.channel_kid
        elif kid is not None:
            header["kid"] = kid
        return "Bearer " + self._sign(header, payload, sign_with)

    def _sign(self, header: dict[str, Any], payload: dict[str, Any], sign_with: str) -> str:
        key = {"channel": self.channel_key, "rogue": self.rogue_key, "aad": self.aad.signing_key}[
            sign_with
        ]
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(payload, separators=(",", ":")).encode())
        )
        alg = header["alg"]
        if alg == "none":
            return signing_input + "."
        if alg == "HS256":  # key-confusion attack: HMAC keyed with the published public key
            secret = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            return signing_input + "." + _b64url(mac)
        extra = {k: v for k, v in header.items() if k not in ("alg", "typ")}
        return jwt.encode(payload, key, algorithm="RS256", headers=extra)

    # users and roster -----------------------------------------------------------

    def new_user(
        self,
        name: str,
        *,
        email: str | None = None,
        upn: str | None = None,
        in_roster: bool = True,
        conversation_id: str | None = None,
    ) -> TeamsUser:
        """A Teams user with generated ids; added to the roster unless in_roster=False."""
        number = next(self._user_numbers)
        given, _, surname = name.partition(" ")
        local = ".".join(part.lower() for part in name.split()) or f"user{number}"
        email = email or f"{local}@contoso.example"
        user = TeamsUser(
            id=f"29:1{secrets.token_urlsafe(40)}",
            name=name,
            aad_object_id=str(uuid.uuid4()),
            email=email,
            user_principal_name=upn or email,
            given_name=given or None,
            surname=surname or None,
            tenant_id=self.tenant_id,
        )
        if in_roster:
            self.add_member(user, conversation_id)
        return user

    def new_user_in_tenant(self, name: str, tenant_id: str, *, email: str | None = None) -> TeamsUser:
        """A user of another organisation (Entra tenant), in the roster with that tenant."""
        user = replace(self.new_user(name, email=email, in_roster=False), tenant_id=tenant_id)
        self.add_member(user)
        return user

    def add_member(self, user: TeamsUser, conversation_id: str | None = None) -> None:
        """Make GET members/{user.id} find `user` (in one conversation, or everywhere)."""
        with self._roster_lock:
            if conversation_id is None:
                self._global_roster[user.id] = user
            else:
                self._conversation_roster.setdefault(conversation_id, {})[user.id] = user

    def remove_member(self, user_id: str, conversation_id: str | None = None) -> None:
        with self._roster_lock:
            if conversation_id is None:
                self._global_roster.pop(user_id, None)
            else:
                self._conversation_roster.get(conversation_id, {}).pop(user_id, None)

    def member(self, conversation_id: str, user_id: str) -> TeamsUser | None:
        with self._roster_lock:
            local = self._conversation_roster.get(conversation_id, {})
            return local.get(user_id) or self._global_roster.get(user_id)

    def members(self, conversation_id: str) -> list[TeamsUser]:
        with self._roster_lock:
            merged = {**self._global_roster, **self._conversation_roster.get(conversation_id, {})}
            return list(merged.values())

    # activities ---------------------------------------------------------------

    def _require_default_app(self) -> str:
        if self.default_app_id is None:
            raise RuntimeError("register an app first (channel.bot_env / register_app)")
        return self.default_app_id

    @property
    def activities(self) -> TeamsActivities:
        """Activity builders addressed to the default (first registered) bot."""
        return self.activities_for(self._require_default_app())

    def activities_for(self, app_id: str, bot_name: str | None = None) -> TeamsActivities:
        key = f"{app_id}|{bot_name or self.bot_name}"
        if key not in self._activities:
            self._activities[key] = TeamsActivities(
                service_url=self.service_url,
                app_id=app_id,
                bot_name=bot_name or self.bot_name,
                tenant_id=self.tenant_id,
            )
        return self._activities[key]

    def activities_in_tenant(self, tenant_id: str) -> TeamsActivities:
        """Activity builders for the default bot, as Teams sends them from another tenant."""
        return TeamsActivities(
            service_url=self.service_url,
            app_id=self._require_default_app(),
            bot_name=self.bot_name,
            tenant_id=tenant_id,
        )

    def headers_for(
        self, activity: Mapping[str, Any], *, app_id: str | None = None
    ) -> dict[str, str]:
        """Headers the channel sends with `activity` (valid token for its serviceUrl)."""
        return {
            "Authorization": self.bearer(app_id, activity.get("serviceUrl")),
            "Content-Type": "application/json; charset=utf-8",
        }

    async def deliver(
        self,
        client: Any,
        activity: Mapping[str, Any],
        *,
        path: str = "/api/messages",
        app_id: str | None = None,
        authorization: str | None | Literal["valid"] = "valid",
    ) -> Any:
        """POST `activity` to the bot like the channel does; returns the client response.

        `client` is anything with aiohttp's `.post(url, data=, headers=)` — e.g.
        aiohttp's TestClient (path relative) or a ClientSession (pass a full URL)."""
        headers = self.headers_for(activity, app_id=app_id)
        if authorization is None:
            headers.pop("Authorization")
        elif authorization != "valid":
            headers["Authorization"] = authorization
        return await client.post(path, data=json.dumps(activity), headers=headers)
