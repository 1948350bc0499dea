"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_ignoring_duplicates(
    conn: AsyncConnection, table: Table, values: dict[str, Any], unique: str | list[str]
) -> Any:
    """INSERT … ON CONFLICT (columns) DO NOTHING, in the connection's dialect."""
    columns = [unique] if isinstance(unique, str) else unique
    return _insert(conn.dialect.name, table).values(**values).on_conflict_do_nothing(index_elements=columns)


async def insert_new(
    conn: AsyncConnection, table: Table, values: dict[str, Any], unique: str, returning: str
) -> Any | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING `returning`: the new row's value, or None when
    a row with the same `unique` value exists.

    For the inserts every question makes (its record, its outbox jobs): the statement is built
    once per column set and reused with new parameters, which skips SQLAlchemy's statement
    construction and cache-key walk (a third of the CPU of such an insert, measured).
    """
    statement = _prepared_insert(conn.dialect.name, table, tuple(values), unique, returning)
    return (await conn.execute(statement, values)).scalar()


@cache
def _prepared_insert(dialect: str, table: Table, columns: tuple[str, ...], unique: str, returning: str) -> Any:
    statement = _insert(dialect, table).values({column: bindparam(column) for column in columns})
    return statement.on_conflict_do_nothing(index_elements=[unique]).returning(table.c[returning])


def supports_skip_locked(conn: AsyncConnection) -> bool:
    """PostgreSQL claims rows with FOR UPDATE SKIP LOCKED; SQLite serialises writers instead."""
    return conn.dialect.name == "postgresql"


def upsert(conn: AsyncConnection, table: Table, values: dict[str, Any], key_column: str) -> Any:
    """INSERT, or UPDATE every other column when the key exists."""
    statement = _insert(conn.dialect.name, table).values(**values)
    changes = {name: statement.excluded[name] for name in values if name != key_column}
    return statement.on_conflict_do_update(index_elements=[key_column], set_=changes)


def _insert(dialect: str, table: Table) -> Any:
    """An INSERT in the dialect that can say ON CONFLICT (both of ours can, in their own way)."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)
