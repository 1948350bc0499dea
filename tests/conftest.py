"""Fixtures shared by every test: a fresh, migrated database on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from store.db import create_engine
from store.migrate import upgrade, upgrade_async
from store.store import Store

T = TypeVar("T")
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_url(database: str) -> str:
    return make_url(POSTGRES_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


async def _pg_admin(statement: str) -> None:
    url = make_url(POSTGRES_ADMIN_URL)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking set-up (which may start its own event loop) beside the test's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """One migrated PostgreSQL database per test session; each test gets a copy of it."""
    name = f"cqb_template_{os.getpid()}"
    _in_thread(asyncio.run, _pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
    _in_thread(asyncio.run, _pg_admin(f'CREATE DATABASE "{name}"'))
    _in_thread(upgrade, _pg_url(name))
    yield name
    _in_thread(asyncio.run, _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database of each kind the product supports."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/bot.db"
        await upgrade_async(url)
        yield url
        return
    template = request.getfixturevalue("pg_template")
    name = f"cqb_test_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield _pg_url(name)
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = create_engine(database_url)
    yield Store(engine)
    await engine.dispose()
