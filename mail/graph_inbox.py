"""Reading the shared mailbox's Inbox through a Graph delta query.

The caller keeps the returned `delta_link` and passes it to the next `sync`, so each round
fetches only what changed. Graph may hand an item out twice (a repeated page, an update such as
a category change), so callers must treat `internet_message_id` as the idempotency key; mail
already tagged with the processed category is left out here. When the delta token has expired
Graph answers 410 Gone: the inbox is then read from the start and `resynced` says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from errors import Permanent
from mail.base import InboundMail
from mail.graph import (
    IN_REPLY_TO_PROPERTY,
    REFERENCES_PROPERTY,
    GraphClient,
    GraphError,
)
from mail.inbound import (
    MAX_MIME_BYTES,
    body_from_mime,
    headers_dict,
    message_ids,
    normalise_message_id,
)

log = logging.getLogger(__name__)

# No body: a mail's body is read separately, and only its first MAX_MIME_BYTES (read_body).
_SELECT = (
    "id,internetMessageId,internetMessageHeaders,conversationId,from,sender,subject,"
    "receivedDateTime,categories,isDraft"
)
_EXPAND = (
    "singleValueExtendedProperties($filter=id eq '"
    + IN_REPLY_TO_PROPERTY
    + "' or id eq '"
    + REFERENCES_PROPERTY
    + "')"
)


@dataclass(frozen=True)
class InboxItem:
    """An inbound mail (without its body until `GraphInbox.read_body`) and the Graph id needed
    to read its body and tag it afterwards."""

    graph_id: str
    mail: InboundMail


@dataclass(frozen=True)
class InboxPage:
    """One sync round: new or changed mail, ids removed from the Inbox, and the next link."""

    items: tuple[InboxItem, ...]
    delta_link: str
    resynced: bool = False
    removed: tuple[str, ...] = field(default=())
    skipped_processed: int = 0

    @property
    def mails(self) -> list[InboundMail]:
        return [item.mail for item in self.items]


class GraphInbox:
    """Delta sync of /users/{mailbox}/mailFolders/inbox/messages, plus tagging handled mail."""

    def __init__(self, client: GraphClient, *, page_size: int = 50) -> None:
        self.client = client
        self.page_size = page_size

    async def sync(self, delta_link: str | None) -> InboxPage:
        """Everything new since `delta_link` (None: the whole Inbox) and the link to keep."""
        return await self.client.run(self._sync_blocking, delta_link)

    async def read_body(self, item: InboxItem) -> InboundMail:
        """The item's mail with its body: the start of its MIME source (MAX_MIME_BYTES at most,
        the rest never downloaded), parsed on the mailbox's thread, never on the event loop."""
        text = await self.client.run(self._body_blocking, item.graph_id)
        return replace(item.mail, text=text)

    async def mark_processed(self, graph_message_id: str, *, trusted: bool = True) -> None:
        """Add the processed category (the untrusted one for mail the bot did not believe)
        once; a message already tagged is left alone."""
        config = self.client.config
        category = config.processed_category if trusted else config.untrusted_category
        await self.client.run(self._mark_blocking, graph_message_id, category)

    # -- worker thread -------------------------------------------------------------------

    def _initial(self) -> tuple[str, dict[str, str]]:
        return (
            self.client.url("/mailFolders/inbox/messages/delta"),
            {"$select": _SELECT, "$expand": _EXPAND},
        )

    def _page(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        headers = {"Prefer": f"odata.maxpagesize={self.page_size}"}
        return self.client.with_retries(
            "inbox delta",
            lambda: self.client.request("get", url, params=params, headers=headers),
        )

    def _sync_blocking(self, delta_link: str | None) -> InboxPage:
        graph_root = self.client.config.graph_url + "/"
        resynced = False
        if delta_link and not delta_link.startswith(graph_root):
            # never send the bearer token to a host other than the configured Graph
            log.warning("stored delta link is not on %s; reading the inbox afresh", graph_root)
            delta_link, resynced = None, True
        url, params = (delta_link, None) if delta_link else self._initial()
        changed: dict[str, dict[str, Any]] = {}
        removed: list[str] = []
        while True:
            try:
                page = self._page(url, params)
            except GraphError as exc:
                stale = exc.status == 410 or "syncstate" in exc.code.lower()
                if not stale or resynced:
                    raise Permanent(f"inbox delta: {exc}") from None
                log.warning("inbox delta token no longer valid (%s); reading afresh", exc.code)
                url, params = self._initial()
                changed.clear()
                removed.clear()
                resynced = True
                continue
            for entry in page.get("value", []):
                gid = str(entry.get("id", ""))
                if not gid:
                    continue
                if "@removed" in entry:
                    changed.pop(gid, None)
                    removed.append(gid)
                else:
                    changed[gid] = entry  # a repeat replaces the earlier copy
            next_link = page.get("@odata.nextLink")
            if next_link:
                if not str(next_link).startswith(graph_root):
                    raise Permanent("Graph nextLink points at another host")
                url, params = str(next_link), None
                continue
            new_delta = page.get("@odata.deltaLink")
            if not new_delta:
                raise Permanent("Graph delta page had neither nextLink nor deltaLink")
            break
        items: list[InboxItem] = []
        skipped = 0
        ours = {self.client.config.processed_category, self.client.config.untrusted_category}
        for gid, entry in changed.items():
            if entry.get("isDraft"):
                continue
            if ours & set(entry.get("categories") or []):
                skipped += 1
                continue
            if "internetMessageHeaders" not in entry:
                entry = self._full_message(gid) or entry
            items.append(InboxItem(graph_id=gid, mail=inbound_from_graph(entry, self.client.clock.now())))
        return InboxPage(
            items=tuple(items),
            delta_link=str(new_delta),
            resynced=resynced,
            removed=tuple(removed),
            skipped_processed=skipped,
        )

    def _full_message(self, gid: str) -> dict[str, Any] | None:
        """Delta rounds may leave out internetMessageHeaders: read the message itself."""
        url = self.client.url(f"/messages/{quote(gid, safe='')}")
        params = {"$select": _SELECT, "$expand": _EXPAND}
        try:
            return self.client.with_retries(
                "read message", lambda: self.client.request("get", url, params=params)
            )
        except GraphError as exc:
            if exc.status == 404:
                return None
            raise Permanent(f"read message: {exc}") from None

    def _body_blocking(self, graph_message_id: str) -> str:
        url = self.client.url(f"/messages/{quote(graph_message_id, safe='')}/$value")
        try:
            source = self.client.with_retries(
                "read mail body", lambda: self.client.request_prefix(url, limit=MAX_MIME_BYTES)
            )
        except GraphError as exc:
            if exc.status == 404:
                log.warning("message to read is gone from the mailbox; read as empty")
                return ""
            raise Permanent(f"read mail body: {exc}") from None
        return body_from_mime(source)

    def _mark_blocking(self, graph_message_id: str, category: str) -> None:
        client = self.client
        url = client.url(f"/messages/{quote(graph_message_id, safe='')}")
        try:
            current = client.with_retries(
                "read categories",
                lambda: client.request("get", url, params={"$select": "categories"}),
            )
            categories = list(current.get("categories") or [])
            if category in categories:
                return
            client.with_retries(
                "tag processed",
                lambda: client.request("patch", url, data={"categories": categories + [category]}),
            )
        except GraphError as exc:
            if exc.status == 404:
                log.warning("message to tag is gone from the mailbox; nothing to tag")
                return
            raise Permanent(f"tag processed: {exc}") from None


def _address(field_value: dict[str, Any] | None) -> tuple[str, str]:
    email = (field_value or {}).get("emailAddress") or {}
    return str(email.get("address", "")).lower(), str(email.get("name", ""))


def _received_at(value: str | None, now: datetime) -> datetime:
    if not value:
        return now
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def inbound_from_graph(message: dict[str, Any], now: datetime) -> InboundMail:
    """An `InboundMail` from a Graph message resource (as selected by `GraphInbox`), without
    its body (`GraphInbox.read_body` adds it); received `now` if Graph gave no time."""
    headers = headers_dict(
        (h.get("name", ""), h.get("value", ""))
        for h in message.get("internetMessageHeaders") or []
        if h.get("name")
    )
    props = {
        p.get("id", "").lower(): str(p.get("value", ""))
        for p in message.get("singleValueExtendedProperties") or []
    }
    in_reply_to = message_ids(headers.get("in-reply-to") or props.get(IN_REPLY_TO_PROPERTY.lower()))
    references = message_ids(headers.get("references") or props.get(REFERENCES_PROPERTY.lower()))
    sender, name = _address(message.get("from") or message.get("sender"))
    return InboundMail(
        internet_message_id=normalise_message_id(str(message.get("internetMessageId", ""))),
        sender=sender,
        sender_name=name,
        subject=str(message.get("subject") or ""),
        text="",
        received_at=_received_at(message.get("receivedDateTime"), now),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=references,
        conversation_id=message.get("conversationId"),
        headers=headers,
    )
