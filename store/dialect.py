"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_ignoring_duplicates(
    conn: AsyncConnection, table: Table, values: dict[str, Any], unique_column: str
) -> Any:
    """INSERT … ON CONFLICT (column) DO NOTHING, in the connection's dialect."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table).values(**values).on_conflict_do_nothing(index_elements=[unique_column])


def supports_skip_locked(conn: AsyncConnection) -> bool:
    """PostgreSQL claims rows with FOR UPDATE SKIP LOCKED; SQLite serialises writers instead."""
    return conn.dialect.name == "postgresql"
