"""Alembic environment: migrations run over the app's own async engine settings."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from store.db import create_engine
from store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.execute(text("PRAGMA foreign_key_check")).all()
            if broken:
                raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:10]}")


def _foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
    """Batch mode rebuilds a SQLite table by copying it and dropping the old one; with foreign
    keys on, that DROP would cascade to every child row (answers, feedback, support). They are
    checked once at the end instead (PRAGMA foreign_key_check)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


async def _run_online() -> None:
    engine = create_engine(context.config.attributes["database_url"])
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _foreign_keys_off)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(_run_online())
