"""The Bot Connector REST API (v3), called directly over one pooled HTTP session.

botbuilder's ConnectorClient (msrest) spent milliseconds of CPU per call serialising the
activity through its generic model serialiser, and sent each request with `requests` in a
worker thread. The calls the bot makes outside a turn are four plain JSON requests, so they
are made here: one keep-alive `aiohttp` session for every service URL, the activity's JSON
built straight from the models, and the outgoing token kept in memory (bot.credentials).
"""

from __future__ import annotations

import datetime
import json
import os
import ssl
from enum import Enum
from typing import Any
from urllib.parse import quote

import aiohttp
import certifi
from aiohttp.helpers import get_env_proxy_for_url
from botframework.connector.about import __version__ as BOTFRAMEWORK_VERSION
from msrest.serialization import Model, Serializer
from multidict import CIMultiDictProxy
from yarl import URL

from bot.credentials import OutgoingToken

# What botbuilder's connector clients put in User-Agent; the channel reads the SDK version from it.
USER_AGENT = f"Microsoft-BotFramework/3.1 (BotBuilder Python/{BOTFRAMEWORK_VERSION})"
# Under the outbox lease (60 s by default), so a hung call is retried by this worker, not another.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
# Above the outbox worker's 16 concurrent jobs plus roster look-ups from turns.
MAX_CONNECTIONS = 64


class ConnectorRefused(Exception):
    """The Bot Connector answered with an error status (its headers carry any Retry-After)."""

    def __init__(self, status: int, headers: CIMultiDictProxy[str]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers


class BotConnectorApi:
    """Sends, replies, updates and roster look-ups, for any service URL, over one session.

    The session is made on first use (it must be made on the running loop) and closed by
    `close()` at shutdown. Errors: `ConnectorRefused` for an error status; aiohttp's
    `ClientError`, `OSError` or `TimeoutError` for the request; whatever a token refresh raises
    (bot.credentials). No error message shows the token.
    """

    def __init__(self, token: OutgoingToken) -> None:
        self._token = token
        self._tls = _tls_context()
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str | None], tuple[URL | None, aiohttp.BasicAuth | None]] = {}

    async def send(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> str | None:
        """A new message at the end of the conversation; returns its activity id."""
        created = await self._call("POST", _url(service_url, conversation_id, "activities"), activity)
        return _activity_id(created)

    async def reply(
        self, service_url: str, conversation_id: str, reply_to_id: str, activity: dict[str, Any]
    ) -> str | None:
        """A reply to an earlier activity (threaded where the channel threads); returns its id."""
        url = _url(service_url, conversation_id, "activities", reply_to_id)
        return _activity_id(await self._call("POST", url, activity))

    async def update(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> None:
        """Replace an earlier activity in place."""
        await self._call("PUT", _url(service_url, conversation_id, "activities", activity_id), activity)

    async def member(self, service_url: str, conversation_id: str, user_id: str) -> Any:
        """One roster member of the conversation, as the connector's JSON (a TeamsChannelAccount)."""
        return await self._call("GET", _url(service_url, conversation_id, "members", user_id))

    async def create_conversation(self, service_url: str, parameters: dict[str, Any]) -> Any:
        """POST /v3/conversations (ConversationParameters); returns the connector's JSON,
        whose "id" is the conversation's. For one user and isGroup false, Teams answers with
        that user's 1:1 chat with the bot, the same one every time."""
        return await self._call("POST", URL(f"{service_url.rstrip('/')}/v3/conversations", encoded=True), parameters)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _call(self, method: str, url: URL, body: dict[str, Any] | None = None) -> Any:
        """One request; a 401 is tried once more with a new token (see OutgoingToken.refused)."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        proxy, proxy_auth = self._proxy(url)
        for last_try in (False, True):
            authorization = await self._token.authorization()
            if authorization is not None:
                headers["Authorization"] = authorization
            async with self._http().request(
                method, url, data=data, headers=headers, proxy=proxy, proxy_auth=proxy_auth, allow_redirects=False
            ) as response:
                content = await response.read()  # read whole, so the connection goes back to the pool
                status, answer_headers = response.status, response.headers
            if status == 401 and authorization is not None and not last_try:
                self._token.refused(authorization)
                continue
            if not 200 <= status < 300:
                raise ConnectorRefused(status, answer_headers)
            break
        try:
            return json.loads(content) if content else None
        except ValueError:  # done all the same: the body only says what was created
            return None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, ssl=self._tls), timeout=REQUEST_TIMEOUT
            )
        return self._session

    def _proxy(self, url: URL) -> tuple[URL | None, aiohttp.BasicAuth | None]:
        """HTTPS_PROXY and NO_PROXY, which msrest's `requests` honoured, looked up once per host:
        aiohttp's `trust_env` looks them (and ~/.netrc) up in a thread on every request."""
        host = (url.scheme, url.host)
        if host not in self._proxies:
            try:
                self._proxies[host] = get_env_proxy_for_url(url)
            except LookupError:
                self._proxies[host] = (None, None)
        return self._proxies[host]


def model_json(model: Model) -> dict[str, Any]:
    """A botbuilder model (an activity, a conversation reference) as the JSON msrest's
    `serialize()` makes of it (camelCase keys, None attributes left out), built from the
    model's attribute map at a tenth of the cost."""
    return _model_json(model)


def _url(service_url: str, conversation_id: str, collection: str, item: str | None = None) -> URL:
    """{serviceUrl}/v3/conversations/{id}/{collection}[/{item}], ids quoted as msrest quoted path
    arguments (a channel thread's ";messageid=" too); `encoded` keeps yarl from re-quoting them."""
    url = f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}/{collection}"
    if item is not None:
        url += "/" + quote(item, safe="")
    return URL(url, encoded=True)


def _activity_id(created: Any) -> str | None:
    """The id in a ResourceResponse ({"id": ...}); some channels answer without one."""
    return created.get("id") if isinstance(created, dict) else None


def _tls_context() -> ssl.SSLContext:
    """The CAs msrest's `requests` trusted for these calls: REQUESTS_CA_BUNDLE (or
    CURL_CA_BUNDLE) when set, e.g. behind a TLS-inspecting proxy, else certifi's."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


_BASIC_TYPES: dict[str, type] = {"bool": bool, "int": int, "float": float}


def _model_json(model: Model) -> dict[str, Any]:
    serialized: dict[str, Any] = {}
    for attribute, spec in model._attribute_map.items():
        value = getattr(model, attribute)
        if value is not None:
            serialized[spec["key"]] = _typed_json(value, spec["type"])
    return serialized


def _typed_json(value: Any, data_type: str) -> Any:
    """One attribute by its declared msrest type: str, bool, int, iso-8601, object, a model
    name, or a list ([T]) or dict ({T}) of one; None items stay None, as msrest leaves them."""
    if data_type == "str":
        return value.value if isinstance(value, Enum) else str(value)
    if data_type == "object":
        return _object_json(value)
    if data_type in _BASIC_TYPES:
        return _BASIC_TYPES[data_type](value)
    if data_type == "iso-8601":
        return Serializer.serialize_iso(value)
    if data_type[0] == "[":
        return [None if item is None else _typed_json(item, data_type[1:-1]) for item in value]
    if data_type[0] == "{":
        return {_key(k): None if v is None else _typed_json(v, data_type[1:-1]) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    return _model_json(value)


def _object_json(value: Any) -> Any:
    """A free-form "object" attribute (card content, channelData, value): msrest's rules."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, dict):
        return {_key(k): _object_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_object_json(item) for item in value]
    if isinstance(value, Model):
        return _model_json(value)
    if isinstance(value, Enum):
        return value.value
    if type(value) is datetime.datetime:
        return Serializer.serialize_iso(value)
    return str(value)


def _key(key: Any) -> str:
    return key.value if isinstance(key, Enum) else str(key)
