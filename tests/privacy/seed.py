"""Putting colleagues' data into a real database through the store, and reading all of it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select, update

from store import schema
from store.records import NewQuestion
from store.store import Store

#: The tables this product's data lives in (named, so tables added later are not assumed).
TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        schema.events, schema.questions, schema.answers, schema.faq_feedback, schema.question_support,
        schema.inbound_mail, schema.outbox, schema.people, schema.roles, schema.audit_log,
        schema.service_state, schema.faq_entries, schema.faq_phrasings,
    )
}


def teams_address(user_id: str, aad_id: str | None, conversation: str) -> dict[str, Any]:
    """A conversation reference as bot/ stores it for a personal chat."""
    return {
        "activity_id": "1700000000000",
        "user": {"id": user_id, "name": "someone", "aad_object_id": aad_id},
        "bot": {"id": "28:bot", "name": "Questions Bot"},
        "conversation": {"id": conversation, "conversation_type": "personal"},
        "channel_id": "msteams",
        "service_url": "https://smba.example/",
    }


def channel_address(channel: str, speaker: dict[str, str] | None = None) -> dict[str, Any]:
    """A channel thread's conversation reference as the Teams channel keeps it; with `speaker`,
    as versions before 0010 kept it, naming whoever typed the command there (`user`)."""
    return {
        "activityId": "1700000000001",
        **({"user": speaker} if speaker else {}),
        "bot": {"id": "28:bot", "name": "Questions Bot"},
        "conversation": {"id": f"{channel};messageid=1700000000001", "conversationType": "channel", "isGroup": True},
        "channelId": "msteams",
        "serviceUrl": "https://smba.example/",
    }


async def ask(
    store: Store,
    text: str,
    *,
    key: str,
    asker_id: str,
    aad_id: str | None = None,
    name: str | None = None,
    email: str | None = None,
    source: str = "teams",
    anonymous: bool = False,
) -> int:
    """Record a question the way the product does (Teams: with an address to reply to)."""
    conversation = f"a:{asker_id}"
    async with store.unit() as unit:
        question_id = await unit.questions.add(
            NewQuestion(
                dedupe_key=key,
                source=source,
                text=text,
                asker_id=asker_id,
                asker_aad_id=aad_id,
                asker_name=name,
                asker_email=email,
                conversation_id=conversation if source == "teams" else None,
                conversation_type="personal" if source == "teams" else "mail",
                address=teams_address(asker_id, aad_id, conversation) if source == "teams" else None,
                reply_to_id="1700000000000" if source == "teams" else f"<{key}@mail.example>",
                anonymous=anonymous,
            )
        )
    assert question_id is not None
    return question_id


async def backdate(store: Store, table: Table, column: str, days: float, *where: Any) -> None:
    """Make rows look `days` old: the clock is the only thing a test cannot wait for."""
    async with store.engine.begin() as conn:
        await conn.execute(
            update(table).where(*where).values({column: datetime.now(UTC) - timedelta(days=days)})
        )


async def counts(store: Store) -> dict[str, int]:
    """Rows per table, for every table of the schema."""
    async with store.engine.connect() as conn:
        return {
            name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for name, table in TABLES.items()
        }


async def dump(store: Store) -> str:
    """Every value in every table, as one string: what an erased person must not appear in."""
    parts: list[str] = []
    async with store.engine.connect() as conn:
        for table in TABLES.values():
            for row in await conn.execute(select(table)):
                parts.append(f"{table.name}: {dict(row._mapping)!r}")
    return "\n".join(parts)
