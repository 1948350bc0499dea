"""Sending the bot's mail from the shared mailbox through Microsoft Graph.

`GraphClient` owns what is per mailbox: the MSAL token source, the O365 connection, and one
worker thread. O365 and MSAL are synchronous; running every call for a mailbox on its own single
thread keeps them off the event loop and keeps us far below Graph's 4 concurrent requests per
mailbox. `GraphMailTransport` is the `MailTransport` the outbox uses.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import parseaddr
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import requests
import urllib3
from O365.utils.utils import ApiComponent

from clock import SYSTEM_CLOCK, Clock
from errors import Permanent, Transient, parse_retry_after
from mail.base import BOT_MARKER, KeptMail, MailSearchFailed, MailTrail, OutgoingMail, SentMail
from mail.graph_auth import GraphConnection, GraphProtocol, TokenRefused, TokenSource
from mail.graph_config import GraphConfig

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Named MAPI property holding `OutgoingMail.key`; filterable, so a retry finds its own mail.
KEY_PROPERTY = "String {00020329-0000-0000-C000-000000000046} Name ColleagueBotKey"
#: MAPI tags Graph exposes for headers it will not let us set directly.
IN_REPLY_TO_PROPERTY = "String 0x1042"
REFERENCES_PROPERTY = "String 0x1039"

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class GraphError(Permanent):
    """Graph refused the request; retrying the same request will not help."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code


class GraphClient:
    """One mailbox: token source, O365 connection, one worker thread, retry policy."""

    def __init__(self, config: GraphConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.clock = clock
        self.tokens = TokenSource(config, clock)
        self.protocol = GraphProtocol(config.graph_url, config.mailbox)
        self.connection = GraphConnection(config, self.tokens)
        self._api = ApiComponent(protocol=self.protocol, main_resource=config.mailbox)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"graph-{config.mailbox}")

    def url(self, path: str) -> str:
        """Absolute URL for a path under /users/{mailbox}."""
        return self._api.build_url(path)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking O365/MSAL work on this mailbox's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One Graph call (worker thread). Raises Transient or GraphError on failure."""
        kwargs: dict[str, Any] = {"headers": dict(headers or {})}
        if params:
            kwargs["params"] = params
        if data is not None:
            kwargs["data"] = data
        response = self._send(method, url, kwargs)
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()

    def request_prefix(self, url: str, *, limit: int) -> bytes:
        """The first `limit` bytes of a GET's body (worker thread). The rest is never read, so
        a 10 MB mail costs no more than `limit` bytes of parsing, and no JSON decoding at all."""
        response = self._send("get", url, {"headers": {}, "stream": True})
        try:
            return response.raw.read(limit, decode_content=True)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise Transient(f"GET failed while reading: {type(exc).__name__}") from None
        finally:
            response.close()

    def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> requests.Response:
        """The response to one call if it succeeded; Transient or GraphError if not."""
        try:
            response = self.connection.oauth_request(url, method, **kwargs)
        except TokenRefused as exc:
            raise GraphError(401, "token_unavailable", str(exc)) from None
        except requests.RequestException as exc:
            raise Transient(f"{method.upper()} failed: {type(exc).__name__}") from None
        status = response.status_code
        if status < 300:
            return response
        code, message = _error_of(response)
        response.close()
        if status in TRANSIENT_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())
            raise Transient(f"Graph {method.upper()} HTTP {status} {code}", retry_after)
        raise GraphError(status, code, message)

    def with_retries(self, what: str, operation: Callable[[], T]) -> T:
        """Run `operation` again on transient failures, honouring Retry-After (worker thread).

        Gives up with `Transient` once attempts run out or the server asks for a wait longer
        than `max_inline_wait`, so the durable outbox reschedules instead of a thread sleeping.
        """
        cfg = self.config
        for attempt in range(cfg.max_attempts):
            try:
                return operation()
            except Transient as exc:
                if exc.retry_after is not None:
                    delay = exc.retry_after + random.uniform(0, 0.1 * exc.retry_after + 0.05)
                else:
                    backoff = cfg.retry_base_delay * (2**attempt)
                    delay = random.uniform(backoff / 2, backoff)
                last = attempt == cfg.max_attempts - 1
                if last or delay > cfg.max_inline_wait:
                    raise Transient(f"{what}: {exc}", exc.retry_after or delay) from None
                log.info("%s: %s; retrying in %.1fs", what, exc, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Finish queued work, then close HTTP sessions."""
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        self.connection.close()
        self.tokens.close()


def _error_of(response: requests.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error", {})
    except ValueError:
        return "", ""
    if isinstance(error, dict):
        return str(error.get("code", "")), str(error.get("message", ""))[:300]
    return str(error), ""


def odata_quote(value: str) -> str:
    """A string literal for $filter: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


class SendPacer:
    """At most `limit` sends in any `period` seconds, counted from when each send finished.

    Exchange Online rejects a mailbox's 31st message in a minute; pacing here keeps a burst of
    answers from turning into throttling and retries. Counting from the end of a send (not the
    start) keeps the server-side spacing at least `period` however long a send takes.
    """

    def __init__(self, limit: int, period: float = 60.0) -> None:
        self.limit = limit
        self.period = period
        self._stamps: deque[float] = deque()

    async def wait(self) -> None:
        """Return once one more send fits in the window (callers serialise their sends)."""
        while True:
            now = time.monotonic()
            while self._stamps and self._stamps[0] <= now - self.period:
                self._stamps.popleft()
            if len(self._stamps) < self.limit:
                return
            await asyncio.sleep(self._stamps[0] + self.period - now)

    def record(self) -> None:
        """Count a send that just finished (or was attempted)."""
        self._stamps.append(time.monotonic())


def _recipient(address: str) -> dict[str, Any]:
    name, addr = parseaddr(address)
    entry: dict[str, Any] = {"address": addr or address}
    if name:
        entry["name"] = name
    return {"emailAddress": entry}


class GraphMailTransport:
    """`MailTransport` over Graph: one mail per `OutgoingMail.key`, from the shared mailbox.

    Each attempt first looks for a message already tagged with the key: a sent one means an
    earlier attempt got through (return its Message-ID); a draft means it stopped before sending
    (send that draft). Only when neither exists is a new draft made. Drafts are created with
    immutable ids, so the id still works after the send moves the message to Sent Items.
    """

    def __init__(self, client: GraphClient, *, pacer: SendPacer | None = None) -> None:
        self.client = client
        self.pacer = pacer or SendPacer(client.config.max_sends_per_minute)
        self._order = asyncio.Lock()

    async def send(self, mail: OutgoingMail) -> SentMail:
        if not mail.to:
            raise Permanent(f"mail {mail.key} has no recipients")
        async with self._order:  # one send at a time, in the order asked
            await self.pacer.wait()
            try:
                return await self.client.run(self._send_blocking, mail)
            finally:
                self.pacer.record()

    def _send_blocking(self, mail: OutgoingMail) -> SentMail:
        try:
            return self.client.with_retries(f"send {mail.key}", lambda: self._attempt(mail))
        except GraphError as exc:
            raise Permanent(f"send {mail.key}: {exc}") from None

    def _attempt(self, mail: OutgoingMail) -> SentMail:
        client = self.client
        found = client.request(
            "get",
            client.url("/messages"),
            params={
                "$filter": (
                    f"singleValueExtendedProperties/Any(ep: ep/id eq {odata_quote(KEY_PROPERTY)}"
                    f" and ep/value eq {odata_quote(mail.key)})"
                ),
                "$select": "id,isDraft,internetMessageId",
                "$top": "10",
            },
        ).get("value", [])
        sent = [m for m in found if not m.get("isDraft")]
        if sent:
            log.info("mail %s was already sent; not sending again", mail.key)
            return self._sent_mail(sent[0]["id"], sent[0].get("internetMessageId"))
        if found:
            draft_id = found[0]["id"]
            log.info("mail %s has an unsent draft; sending it", mail.key)
        else:
            draft_id = self._create_draft(mail)
        try:
            client.request("post", client.url(f"/messages/{quote(draft_id, safe='')}/send"))
        except GraphError as exc:
            if exc.status == 404:
                # gone from Drafts: an earlier send is in flight; look again next attempt
                raise Transient(f"draft of {mail.key} is being sent", 2.0) from None
            raise
        return self._sent_mail(draft_id, None)

    def _sent_mail(self, message_id: str, known: str | None) -> SentMail:
        if known:
            return SentMail(internet_message_id=known)
        try:
            message = self.client.request(
                "get",
                self.client.url(f"/messages/{quote(message_id, safe='')}"),
                params={"$select": "internetMessageId,isDraft"},
            )
        except GraphError as exc:
            if exc.status == 404:  # moving to Sent Items; the next attempt finds it by key
                raise Transient("sent mail not readable yet", 1.0) from None
            raise
        imid = message.get("internetMessageId")
        if not imid:
            raise Transient("sent mail has no Message-ID yet", 1.0)
        return SentMail(internet_message_id=imid)

    def _payload(self, mail: OutgoingMail) -> dict[str, Any]:
        body = (
            {"contentType": "HTML", "content": mail.html}
            if mail.html
            else {"contentType": "Text", "content": mail.text}
        )
        return {
            "subject": mail.subject,
            "body": body,
            "toRecipients": [_recipient(a) for a in mail.to],
            "singleValueExtendedProperties": [{"id": KEY_PROPERTY, "value": mail.key}],
        }

    def _create_draft(self, mail: OutgoingMail) -> str:
        client = self.client
        payload = self._payload(mail)
        if mail.in_reply_to:
            original = self._find_by_message_id(mail.in_reply_to)
            if original:
                # createReply threads the reply in Exchange (conversation, In-Reply-To,
                # References); the overrides replace its recipients, subject and body
                created = client.request(
                    "post",
                    client.url(f"/messages/{quote(original, safe='')}/createReply"),
                    data={"message": payload},
                )
                return str(created["id"])
            # the original is not in this mailbox: set the threading headers as MAPI properties
            payload["singleValueExtendedProperties"] += [
                {"id": IN_REPLY_TO_PROPERTY, "value": mail.in_reply_to},
                {
                    "id": REFERENCES_PROPERTY,
                    "value": " ".join(mail.references or (mail.in_reply_to,)),
                },
            ]
        payload["internetMessageHeaders"] = [{"name": BOT_MARKER, "value": mail.key}]
        created = client.request("post", client.url("/messages"), data=payload)
        return str(created["id"])

    def _find_by_message_id(self, internet_message_id: str) -> str | None:
        found = self.client.request(
            "get",
            self.client.url("/messages"),
            params={
                "$filter": f"internetMessageId eq {odata_quote(internet_message_id)}",
                "$select": "id,isDraft",
                "$top": "5",
            },
        ).get("value", [])
        received = [m for m in found if not m.get("isDraft")]
        return str(received[0]["id"]) if received else None


SHARED_MAILBOX = "shared mailbox"
_FOUND_FIELDS = "id,subject,internetMessageId,conversationId"
_FOUND_PER_QUERY = "100"


class SharedMailbox:
    """The shared mailbox's messages about one person (for `cli.py subject`), found only by
    the bot's own references: the Message-IDs it stored, the conversations those messages and
    the person's mailed questions are in, and the `[Q-n]` subject token of their questions."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    async def find(self, trail: MailTrail) -> list[KeptMail]:
        return await self.client.run(self._find, trail)

    async def delete(self, found: list[KeptMail]) -> list[KeptMail]:
        """Delete each message for good (`permanentDelete`: not to Deleted Items, where
        moderators could still read it); returns those that could not be deleted."""
        return await self.client.run(self._delete, found)

    def _find(self, trail: MailTrail) -> list[KeptMail]:
        found: dict[str, dict[str, Any]] = {}
        for message_id in trail.message_ids:
            self._add(found, self._list({"$filter": f"internetMessageId eq {odata_quote(message_id)}"}))
        conversations = set(trail.conversation_ids) | {
            str(message["conversationId"]) for message in found.values() if message.get("conversationId")
        }
        for conversation_id in sorted(conversations):
            self._add(found, self._list({"$filter": f"conversationId eq {odata_quote(conversation_id)}"}))
        for number in trail.question_ids:
            # the search narrows, the exact token decides ([Q-4] is not)
            token = re.compile(rf"\[\s*Q-{number}\s*\]", re.IGNORECASE)
            matches = self._list({"$search": f'"subject:Q-{number}"'})
            self._add(found, [message for message in matches if token.search(str(message.get("subject", "")))])
        return [
            KeptMail(SHARED_MAILBOX, message["id"], str(message.get("subject", "")), message.get("internetMessageId"))
            for message in found.values()
        ]

    def _list(self, params: dict[str, str]) -> list[dict[str, Any]]:
        client = self.client
        query = {**params, "$select": _FOUND_FIELDS, "$top": _FOUND_PER_QUERY}
        try:
            find = partial(client.request, "get", client.url("/messages"), params=query)
            result = client.with_retries("find mail", find)
        except (GraphError, Transient) as exc:
            raise MailSearchFailed(f"could not search the shared mailbox: {exc}") from None
        return list(result.get("value", []))

    @staticmethod
    def _add(found: dict[str, dict[str, Any]], messages: list[dict[str, Any]]) -> None:
        for message in messages:
            found.setdefault(str(message["id"]), message)

    def _delete(self, found: list[KeptMail]) -> list[KeptMail]:
        client = self.client
        left: list[KeptMail] = []
        for mail in found:
            url = client.url(f"/messages/{quote(mail.id, safe='')}/permanentDelete")
            try:
                client.with_retries("delete mail", partial(client.request, "post", url))
            except GraphError as exc:
                if exc.status != 404:  # 404: already gone
                    left.append(mail)
            except Transient:
                left.append(mail)
        return left
