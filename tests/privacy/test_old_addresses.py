"""Channel addresses kept by versions before 0010 named whoever typed "moderate here" or "board
here"; the upgrade leaves them naming nobody and still able to post there, so no code after it
(the erasure included) needs to know how those old addresses were shaped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from handlers.queue import MODERATORS_CHANNEL
from store.db import create_engine
from store.store import Store
from tests.privacy.seed import channel_address, dump
from tests.privacy.test_migration_numbers import _upgrade, database_at

JO = ("29:1jo-teams-user-id", "Jo Bloggs", "5b0c8a1e-1111-4000-8000-00000000a0j0")
HANA = ("29:hana", "Hana Host", "aad-hana")
NOW = datetime(2026, 1, 5, 9, 30)
DELTA = "https://graph.example/v1.0/users/q/mailFolders/inbox/messages/delta?$deltatoken=abc"


def _speaker(person: tuple[str, str, str]) -> dict[str, str]:
    user_id, name, aad_id = person
    return {"id": user_id, "name": name, "aadObjectId": aad_id}


@pytest.fixture(params=["sqlite", "postgresql"])
async def before_0010(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_at(request.param, tmp_path, "0009") as url:
        yield url


async def test_the_upgrade_leaves_every_kept_channel_address_naming_nobody(before_0010: str) -> None:
    engine = create_engine(before_0010)
    try:
        async with engine.begin() as conn:
            for name, value in ((MODERATORS_CHANNEL, channel_address("19:moderators@thread.tacv2", _speaker(JO))),
                                ("mailbox.delta", DELTA)):
                await conn.execute(text("INSERT INTO service_state (name, value, updated_at) VALUES (:n, :v, :now)"),
                                   {"n": name, "v": value if isinstance(value, str) else json.dumps(value),
                                    "now": NOW})
            for event_id, board in ((1, channel_address("19:hosts@thread.tacv2", _speaker(JO))),
                                    (2, channel_address("19:town@thread.tacv2", _speaker(HANA))),
                                    (3, channel_address("19:kept@thread.tacv2")),  # kept without already
                                    (4, None)):
                await conn.execute(
                    text("INSERT INTO events (id, title, status, opened_by, opened_at, board_address) "
                         "VALUES (:id, :title, 'open', 'Hana', :now, :board)"),
                    {"id": event_id, "title": f"Event {event_id}", "now": NOW,
                     "board": json.dumps(board) if board else None},
                )
    finally:
        await engine.dispose()

    await _upgrade(before_0010, "head")

    engine = create_engine(before_0010)
    store = Store(engine)
    try:
        async with store.unit() as unit:
            assert json.loads(await unit.state.get(MODERATORS_CHANNEL) or "{}") == channel_address(
                "19:moderators@thread.tacv2")  # all that posting there needs: conversation, bot, service
            assert await unit.state.get("mailbox.delta") == DELTA  # not an address: as it was
            boards = [(await unit.events.get(event_id)) for event_id in (1, 2, 3, 4)]
            assert [event.board_address if event else "gone" for event in boards] == [
                channel_address("19:hosts@thread.tacv2"), channel_address("19:town@thread.tacv2"),
                channel_address("19:kept@thread.tacv2"), None,
            ]
        everything = await dump(store)
    finally:
        await engine.dispose()
    for identifier in (*JO, *HANA):
        assert identifier not in everything, identifier
