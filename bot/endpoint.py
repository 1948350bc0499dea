"""`POST /api/messages`: size, shape and authentication checked before the bot sees anything.

Stock botbuilder answers 500 for some forged tokens and for malformed bodies; here every
request gets the status that says what was wrong (413, 400, 415, 401, 408), and nothing is
recorded or called for a rejected request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from botbuilder.core import serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity
from botframework.connector.auth import BotFrameworkAuthentication

from bot.activity_json import activity_from_json
from bot.auth import Unauthorized, authenticate
from bot.teams import QuestionsBot

log = logging.getLogger(__name__)

ACTIVITY_TYPES_NEEDING_A_CONVERSATION = frozenset(
    {"message", "conversationUpdate", "installationUpdate", "invoke", "messageReaction"}
)
# Real activities nest a few levels (a card action's data is five or six deep); deeper JSON is
# refused before anything walks it recursively (json, msrest, botbuilder).
MAX_JSON_DEPTH = 64


class MessagesEndpoint:
    def __init__(
        self,
        auth: BotFrameworkAuthentication,
        bot: QuestionsBot,
        *,
        max_body_bytes: int,
        body_timeout_seconds: float,
    ) -> None:
        self._auth = auth
        self._adapter = CloudAdapter(auth)
        self._bot = bot
        self._max_body_bytes = max_body_bytes
        self._body_timeout_seconds = body_timeout_seconds

    async def handle(self, request: web.Request) -> web.Response:
        activity = await self._read_activity(request)
        try:
            auth_result = await authenticate(self._auth, activity, request.headers.get("Authorization"))
        except Unauthorized:
            return _problem(401, "unauthorized", "the request's token was missing or not valid")
        invoke_response = await self._adapter.process_activity(auth_result, activity, self._bot.on_turn)
        if invoke_response:
            body = invoke_response.body  # ours are plain JSON already; botbuilder's are models
            if not isinstance(body, dict):
                body = serializer_helper(body)
            return web.json_response(body, status=invoke_response.status)
        return web.Response(status=200)

    async def _read_activity(self, request: web.Request) -> Activity:
        if request.content_length is not None and request.content_length > self._max_body_bytes:
            raise _too_large(self._max_body_bytes, request.content_length)
        if request.content_type != "application/json":
            raise _http_error(web.HTTPUnsupportedMediaType, "not_json", "send application/json")
        body = await self._read_body(request)
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _http_error(web.HTTPBadRequest, "not_json", "the body is not valid JSON") from None
        except RecursionError:  # nested far deeper than MAX_JSON_DEPTH
            raise _nested_too_deep() from None
        if _too_deep(body, data):
            raise _nested_too_deep()
        problem = _activity_problem(data)
        if problem:
            raise _http_error(web.HTTPBadRequest, "not_an_activity", problem)
        try:
            return activity_from_json(data)
        except Exception:  # noqa: BLE001 - msrest raises several types for bad shapes
            raise _http_error(web.HTTPBadRequest, "not_an_activity", "the activity could not be read") from None

    async def _read_body(self, request: web.Request) -> bytes:
        """The whole body, however the network cut it into segments, but never more than
        MAX_BODY_BYTES + 1 bytes (413) nor for longer than the request time-out (408, and the
        connection is closed: a client that trickles its body cannot hold it open)."""
        limit = self._max_body_bytes
        body = bytearray()
        try:
            async with asyncio.timeout(self._body_timeout_seconds):
                while len(body) <= limit:
                    chunk = await request.content.read(limit + 1 - len(body))
                    if not chunk:
                        break
                    body += chunk
        except TimeoutError:
            late = _http_error(web.HTTPRequestTimeout, "body_too_slow", "the body did not arrive in time")
            late.force_close()
            raise late from None
        if len(body) > limit:
            too_large = _too_large(limit, len(body))
            too_large.force_close()  # the rest is not worth reading
            raise too_large
        return bytes(body)


def _too_deep(body: bytes, data: Any) -> bool:
    """Whether the parsed JSON nests deeper than MAX_JSON_DEPTH. A body with no more opening
    brackets than that cannot, which is every real activity: counting them is C-fast."""
    if body.count(b"{") + body.count(b"[") <= MAX_JSON_DEPTH or not isinstance(data, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _activity_problem(data: Any) -> str | None:
    """The minimum an activity must have for the bot to act on it and answer it."""
    if not isinstance(data, dict):
        return "the body must be a JSON object"
    if not isinstance(data.get("type"), str) or not data["type"]:
        return "an activity needs a type"
    if data["type"] not in ACTIVITY_TYPES_NEEDING_A_CONVERSATION:
        return None
    for field in ("id", "serviceUrl", "channelId"):
        if not isinstance(data.get(field), str) or not data[field]:
            return f"a {data['type']} activity needs {field}"
    for field in ("conversation", "from", "recipient"):
        part = data.get(field)
        if not isinstance(part, dict) or not isinstance(part.get("id"), str) or not part["id"]:
            return f"a {data['type']} activity needs {field}.id"
    if not isinstance(data.get("text"), str | None):
        return "text must be a string"
    return _field_problem(data)


# The longest value the store keeps for each field (store/schema.py; the delivery key is
# "teams:<conversation id>:<activity id>" in 512). Teams' own ids are far shorter. Ids also
# travel in HTTP headers and URLs of the replies, so they must be printable ASCII.
_ID_LIMITS = {"id": 128, "conversation.id": 256, "from.id": 256, "recipient.id": 256}
_OPTIONAL_TEXT_LIMITS = {"from.name": 256, "from.aadObjectId": 64, "conversation.conversationType": 32}


def _field_problem(data: dict[str, Any]) -> str | None:
    """What a stored or echoed field must be, so an odd value is a 400 rather than a failure later."""
    for path, limit in _ID_LIMITS.items():
        value = _at(data, path)
        if len(value) > limit:
            return f"{path} is longer than {limit} characters"
        if not (value.isascii() and value.isprintable()):
            return f"{path} must be printable ASCII"
    for path, limit in _OPTIONAL_TEXT_LIMITS.items():
        value = _at(data, path)
        if value is None:
            continue
        if not isinstance(value, str):
            return f"{path} must be a string"
        if len(value) > limit:
            return f"{path} is longer than {limit} characters"
    return None


def _at(data: dict[str, Any], path: str) -> Any:
    parent, _, field = path.rpartition(".")
    return (data[parent] if parent else data).get(field)


def _problem(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


def _http_error(kind: type[web.HTTPException], code: str, detail: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": code, "detail": detail}), content_type="application/json")


def _nested_too_deep() -> web.HTTPException:
    return _http_error(web.HTTPBadRequest, "not_json", f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")


def _too_large(limit: int, actual: int) -> web.HTTPException:
    return web.HTTPRequestEntityTooLarge(
        max_size=limit,
        actual_size=actual,
        text=json.dumps({"error": "body_too_large", "detail": f"the body is over {limit} bytes"}),
        content_type="application/json",
    )
