"""Upgrading a database the previous version made: every row and number kept, and no number
handed out again, including numbers whose rows were erased before the upgrade."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from store.db import create_engine
from store.migrate import upgrade
from store.records import NewQuestion
from store.store import Store
from tests.conftest import _pg_admin, _pg_url

PREVIOUS_HEAD = "0005"
NOW = datetime(2026, 1, 5, 9, 30)


async def _upgrade(url: str, revision: str) -> None:
    """As `cli.py db upgrade` does, in a thread (Alembic runs its own event loop)."""
    await asyncio.to_thread(upgrade, url, revision)


@asynccontextmanager
async def database_at(kind: str, tmp_path: Path, revision: str) -> AsyncIterator[str]:
    """An empty database of `kind` ("sqlite", "postgresql") migrated to `revision`, not to today's head."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/bot.db"
        await _upgrade(url, revision)
        yield url
        return
    name = f"cqb_previous_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        url = _pg_url(name)
        await _upgrade(url, revision)
        yield url
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
async def previous_version(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database migrated to the previous version's head, not to today's."""
    async with database_at(request.param, tmp_path, PREVIOUS_HEAD) as url:
        yield url


async def _run(url: str, *statements: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            rows: list[tuple[object, ...]] = []
            for statement in statements:
                result = await conn.execute(text(statement), {"now": NOW})
                rows = [tuple(row) for row in result] if result.returns_rows else []
            return rows
    finally:
        await engine.dispose()


async def test_the_upgrade_keeps_every_row_and_never_hands_a_number_out_again(previous_version: str) -> None:
    url = previous_version
    # What the previous version left: event E-1 with questions Q-1..Q-4 (Q-3 merged into
    # answered and helped), then Q-4 and the newest answer erased, of which the audit
    # log (a moderator claimed Q-4) and a finished outbox job (answer 2's delivery) still tell.
    await _run(
        url,
        "INSERT INTO events (id, title, status, opened_by, opened_at) VALUES (1, 'Briefing', 'open', 'Hana', :now)",
        *(
            "INSERT INTO questions (id, dedupe_key, source, text, status, asker_id, created_at, updated_at, "
            f"event_id, merged_into) VALUES ({n}, 'teams:c:{n}', 'teams', 'question {n}', 'forwarded', "
            f"'29:asker{n}', :now, :now, 1, {'1' if n == 3 else 'NULL'})"
            for n in (1, 2, 3, 4)
        ),
        "INSERT INTO answers (id, question_id, text, author, via, source_key, created_at) "
        "VALUES (1, 2, 'Yes.', 'mo@council.example', 'mail', 'mail:<a1>', :now)",
        "INSERT INTO answers (id, question_id, text, author, via, source_key, created_at) "
        "VALUES (2, 4, 'No.', 'mo@council.example', 'mail', 'mail:<a2>', :now)",
        "INSERT INTO faq_feedback (question_id, entry_id, helpful, created_at) VALUES (2, 'pay-date', true, :now)",
        "INSERT INTO question_support (question_id, supporter, created_at) VALUES (2, 'aad-sam', :now)",
        "INSERT INTO audit_log (at, actor, action, target) VALUES (:now, 'Mo', 'question.claim', 'Q-4')",
        "INSERT INTO outbox (kind, payload, dedupe_key, status, attempts, run_after, created_at, updated_at) "
        "VALUES ('teams.send', '{}', 'answer:2:29:asker4', 'done', 1, :now, :now, :now)",
        "DELETE FROM answers WHERE id = 2",
        "DELETE FROM questions WHERE id = 4",
    )

    await _upgrade(url, "head")

    kept = await _run(
        url,
        "SELECT q.id, q.event_id, q.merged_into, "
        "(SELECT COUNT(*) FROM answers a WHERE a.question_id = q.id), "
        "(SELECT COUNT(*) FROM faq_feedback f WHERE f.question_id = q.id), "
        "(SELECT COUNT(*) FROM question_support s WHERE s.question_id = q.id) "
        "FROM questions q ORDER BY q.id",
    )
    assert kept == [(1, 1, None, 0, 0, 0), (2, 1, None, 1, 1, 1), (3, 1, 1, 0, 0, 0)]

    engine = create_engine(url)
    store = Store(engine)
    try:
        async with store.unit() as unit:
            new_question = await unit.questions.add(
                NewQuestion(dedupe_key="teams:c:new", source="teams", text="A new question", asker_id="29:new",
                            asker_aad_id=None, asker_name=None, asker_email=None, conversation_id="c",
                            conversation_type="personal", address=None, reply_to_id=None)
            )
            assert new_question is not None
            new_answer = await unit.answers.add(new_question, text="Soon.", author="mo", author_name=None,
                                                via="teams", source_key="teams:new")
            new_event, _ = await unit.events.open("Next briefing", description=None, ends_at=None, by="Hana")
    finally:
        await engine.dispose()
    assert new_question > 4, "Q-4 was erased, but its number was used: it must not come back"
    assert new_answer is not None and new_answer > 2
    assert new_event > 1


async def test_after_the_upgrade_erasing_the_newest_questions_frees_no_number(database_url: str) -> None:
    engine = create_engine(database_url)
    store = Store(engine)

    async def ask(n: int) -> int:
        async with store.unit() as unit:
            question_id = await unit.questions.add(
                NewQuestion(dedupe_key=f"teams:c:{n}", source="teams", text=f"question {n}", asker_id="29:a",
                            asker_aad_id=None, asker_name=None, asker_email=None, conversation_id="c",
                            conversation_type="personal", address=None, reply_to_id=None)
            )
        assert question_id is not None
        return question_id

    try:
        first, second = await ask(1), await ask(2)
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM questions WHERE id = :id"), {"id": second})
        third = await ask(3)
    finally:
        await engine.dispose()
    assert (first, second, third) == (1, 2, 3)

