"""Set-based writes that work the same on SQLite and PostgreSQL: one statement per batch, never one per row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement


def insert_ignoring_conflicts(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
    returning: Sequence[ColumnElement[Any]] = (),
) -> list[Any]:
    """`INSERT … ON CONFLICT (conflict_columns) DO NOTHING` for all rows at once.

    Returns the `returning` columns of the rows actually inserted (rows that hit a conflict return nothing),
    so a caller learns which keys were new in the same round trip.
    """
    if not rows:
        return []
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    if returning:
        return list(conn.execute(statement.returning(*returning), list(rows)).all())
    conn.execute(statement, list(rows))
    return []


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key_columns: Sequence[str]) -> None:
    """`INSERT … ON CONFLICT (key_columns) DO UPDATE` setting every other column of `rows`, all rows at once."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    others = [name for name in rows[0] if name not in key_columns]
    statement = statement.on_conflict_do_update(
        index_elements=list(key_columns), set_={name: statement.excluded[name] for name in others}
    )
    conn.execute(statement, list(rows))


def update_by_id(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """`UPDATE table SET … WHERE id = :id` for many rows with an executemany; rows may set different columns."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        columns = tuple(sorted(k for k in row if k != "id"))
        if columns:
            by_columns.setdefault(columns, []).append({f"_{k}": v for k, v in row.items()})
    for columns, group in by_columns.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({column: bindparam(f"_{column}") for column in columns})
        )
        conn.execute(statement, group)
