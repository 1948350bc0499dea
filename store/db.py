"""Engine creation: a plain SQLAlchemy URL in, the right async driver and settings out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from store.sqlite_inline import BUSY_TIMEOUT_MS, begin_immediate, inline_connector

POSTGRES_POOL_SIZE = 10
POSTGRES_POOL_OVERFLOW = 10
SQLITE_LOCK_WAIT_SECONDS = 10.0  # for another process (cli.py) writing to the same file
SQLITE_POOL_WAIT_SECONDS = 120.0  # a transaction waits this long for the one connection
SQLITE_CHECKPOINT_WAIT_SECONDS = 10.0  # for readers and writers (any process) to let the WAL go


def async_url(database_url: str) -> URL:
    """`sqlite:///x.db` → aiosqlite, `postgresql://` → asyncpg; an explicit driver is kept."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "postgres":
        url = url.set(drivername="postgresql")
        backend = "postgresql"
    if url.drivername == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    if url.drivername == "postgresql":
        return url.set(drivername="postgresql+asyncpg")
    return url


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def connection_limit(engine: AsyncEngine) -> int:
    """How many transactions the engine's pool serves at once (see create_engine)."""
    return 1 if is_sqlite(engine) else POSTGRES_POOL_SIZE + POSTGRES_POOL_OVERFLOW


def create_engine(database_url: str) -> AsyncEngine:
    """One engine per process. SQLite gets WAL and write-locking transactions (see below)."""
    url = async_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection: every transaction takes SQLite's write lock anyway (see below), and
        # transactions waiting for the pool's one connection queue on the event loop, whereas
        # several connections contend for the lock inside SQLite's busy handler, which sleeps
        # 1 to 100 ms between tries: under a burst that made acknowledgements slow.
        engine = create_async_engine(
            url,
            async_creator=inline_connector(url.database or ":memory:"),
            pool_size=1,
            max_overflow=0,
            pool_timeout=SQLITE_POOL_WAIT_SECONDS,
        )
        _make_sqlite_transactions_immediate(engine)
    else:
        engine = create_async_engine(
            url, pool_size=POSTGRES_POOL_SIZE, max_overflow=POSTGRES_POOL_OVERFLOW, pool_pre_ping=True
        )
    _drop_nul_characters(engine)
    return engine


def _drop_nul_characters(engine: AsyncEngine) -> None:
    """Every string sent to the database loses its NUL characters, on both databases alike.

    PostgreSQL cannot store NUL in text and fails the whole statement. A NUL in a Teams
    message, a mail's sender name or a card's field would then be a 500, or a mail that fails
    on every read and stops the inbox. No person means anything by a NUL, so it is dropped in
    the one place every value passes, and lookups drop it the same way as inserts.
    """

    @event.listens_for(engine.sync_engine, "before_cursor_execute", retval=True)
    def _before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> Any:
        return statement, _without_nul(parameters)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, tuple | list):
        return type(value)(_without_nul(item) for item in value)
    if isinstance(value, dict):
        return {key: _without_nul(item) for key, item in value.items()}
    return value


def _make_sqlite_transactions_immediate(engine: AsyncEngine) -> None:
    """Every transaction takes SQLite's write lock at BEGIN.

    With the driver's default deferred BEGIN, two transactions that read and then write fail with
    "database is locked" instead of waiting; BEGIN IMMEDIATE makes them queue on busy_timeout.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted rows are overwritten with zeros, not only unlinked: an erased person's name
        # and questions must not stay readable in the file's free space (UK GDPR article 17).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        begin_immediate(connection, SQLITE_LOCK_WAIT_SECONDS)


async def truncate_wal(engine: AsyncEngine) -> bool:
    """Copy SQLite's write-ahead log into the database and empty the log file; True once done
    (always, on PostgreSQL, which has no such file).

    The WAL keeps old versions of pages, and reuses the file from the start rather than
    shrinking it, so rows just erased or purged stay readable in `-wal` until it is truncated.
    A checkpoint cannot finish while another connection (the running bot, `cli.py`) is
    writing or reading an older snapshot; it is tried again until SQLITE_CHECKPOINT_WAIT_SECONDS.
    """
    if not is_sqlite(engine):
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SQLITE_CHECKPOINT_WAIT_SECONDS
    while True:
        # the connection is given back between tries: in the bot it is the only one
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None, "an open connection has its driver connection"
            cursor = await raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = await cursor.fetchone()
            busy = row[0] if row else 0
            await cursor.close()
        if not busy:
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
