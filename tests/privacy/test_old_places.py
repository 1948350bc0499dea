"""Questions asked before the words for where were kept with them (migration 0011): forward
mails and cards go on saying where in the words they showed before, with no id, and every
other part of the reply address as it was."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from handlers.privacy import ASKED_IN, asked_in
from store.db import create_engine
from store.store import Store
from tests.privacy.seed import teams_address
from tests.privacy.test_migration_numbers import _upgrade, database_at

NOW = datetime(2026, 1, 5, 9, 30)
PAYROLL = "the channel “Payroll” of the team “Engineering”"
# (source, conversation type, address): as versions before 0011 kept them
KEPT: dict[int, tuple[str, str | None, dict[str, Any] | None]] = {
    1: ("teams", "personal", teams_address("29:a", "aad-a", "a:personal")),
    2: ("teams", "channel", teams_address("29:b", "aad-b", "19:payroll@thread.tacv2;messageid=1")),
    3: ("teams", "groupChat", teams_address("29:c", "aad-c", "19:group@thread.v2")),
    4: ("teams", None, teams_address("29:d", "aad-d", "a:emulator")),  # the Emulator names no kind
    5: ("teams", "channel", {**teams_address("29:e", "aad-e", "19:payroll@thread.tacv2"), ASKED_IN: PAYROLL}),
    6: ("mail", "mail", None),
}
SHOWN = {
    1: "a personal chat with the bot",
    2: "a Teams channel",
    3: "a group chat",
    4: "a personal chat with the bot",
    5: PAYROLL,
    6: "a mail to the shared mailbox",
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def before_0011(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_at(request.param, tmp_path, "0010") as url:
        yield url


async def test_questions_asked_before_the_words_were_kept_say_where_as_they_did(before_0011: str) -> None:
    engine = create_engine(before_0011)
    try:
        async with engine.begin() as conn:
            for number, (source, kind, address) in KEPT.items():
                await conn.execute(
                    text("INSERT INTO questions (id, dedupe_key, source, text, status, asker_id, conversation_type, "
                         "address, created_at, updated_at) VALUES (:id, :key, :source, :text, 'forwarded', 'someone', "
                         ":kind, :address, :now, :now)"),
                    {"id": number, "key": f"{source}:{number}", "source": source, "text": f"question {number}",
                     "kind": kind, "address": json.dumps(address) if address else None, "now": NOW},
                )
    finally:
        await engine.dispose()

    await _upgrade(before_0011, "head")

    engine = create_engine(before_0011)
    try:
        async with Store(engine).unit() as unit:
            kept = {number: await unit.questions.get(number) for number in KEPT}
    finally:
        await engine.dispose()
    assert {number: asked_in(question) for number, question in kept.items() if question} == SHOWN
    for number, question in kept.items():  # the reply still goes where it went
        assert question is not None
        before = KEPT[number][2]
        assert question.address == (None if before is None else {**before, ASKED_IN: SHOWN[number]})
