"""Set-based statements that work the same on SQLite and PostgreSQL: one per batch, never one per row.

On PostgreSQL a batch is one statement whatever its size: every column's values go as one array parameter and
`unnest` turns them back into rows (`INSERT … SELECT … FROM unnest(…)`, `UPDATE … FROM unnest(…)`). The
server plans one statement instead of one per row, and psycopg sends a few arrays instead of pipelining a
statement per row (a first GLPI load of 100,000 tickets: 359 → 489 tickets/s with the arrays sent in binary,
`bench/glpi_sync.py`). SQLite, which runs in-process and prepares a statement once for an executemany, takes
SQLAlchemy's executemany.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, any_, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """`INSERT` of all rows (each with the same keys) in one statement."""
    if not rows:
        return
    if _unnest_applies(conn, table, rows):
        _Unnest(conn, table, rows).insert()
    else:
        conn.execute(insert(table), list(rows))


def insert_returning(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """`INSERT` of all rows; the new surrogate ids (`id`), in the order of `rows`.

    On PostgreSQL the ids are drawn from the table's sequence first (one `nextval` query for the batch) and
    inserted with the rows, because `INSERT … SELECT … RETURNING` does not promise rows back in input order.
    """
    if not rows:
        return []
    if _unnest_applies(conn, table, rows) and "id" not in rows[0]:
        ids = _next_ids(conn, table, len(rows))
        _Unnest(conn, table, [{"id": new_id, **row} for new_id, row in zip(ids, rows, strict=True)]).insert()
        return ids
    return [new_id for (new_id,) in conn.execute(insert(table).returning(table.c.id), list(rows))]


def insert_ignoring_conflicts(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
    returning: Sequence[ColumnElement[Any]] = (),
) -> list[tuple[Any, ...]]:
    """`INSERT … ON CONFLICT (conflict_columns) DO NOTHING` for all rows at once.

    Returns the `returning` columns of the rows actually inserted, in no particular order (rows that hit a
    conflict return nothing), so a caller learns which keys were new in the same round trip.
    """
    if not rows:
        return []
    if _unnest_applies(conn, table, rows):
        return _Unnest(conn, table, rows).insert(conflict_columns, [column.name for column in returning])
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    if returning:
        return [tuple(row) for row in conn.execute(statement.returning(*returning), list(rows))]
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
    """`UPDATE table SET … WHERE id = …` for many rows; rows may set different columns.

    Several rows for one id apply in order (the later value of a column wins), as one UPDATE each would.
    """
    merged: dict[Any, dict[str, Any]] = {}
    for row in rows:
        merged.setdefault(row["id"], {}).update(row)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in merged.values():
        columns = tuple(sorted(k for k in row if k != "id"))
        if columns:
            by_columns.setdefault(columns, []).append({"id": row["id"], **{k: row[k] for k in columns}})
    for columns, group in by_columns.items():
        if _unnest_applies(conn, table, group):
            _Unnest(conn, table, group).update(columns)
            continue
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({column: bindparam(f"_{column}") for column in columns})
        )
        conn.execute(statement, [{f"_{k}": v for k, v in row.items()} for row in group])


def one_of(conn: Connection, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)` for a batch's worth of values. On PostgreSQL `column = ANY(:array)`: one parameter
    instead of one per value — psycopg re-parses a statement with a thousand placeholders on every execution
    (≈8 ms for 1,000 ids, against ≈1 ms)."""
    values = list(values)
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


# --- PostgreSQL: a batch as column arrays ----------------------------------------------------------------------


def _unnest_applies(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> bool:
    """PostgreSQL, and no column the rows leave out has a Python-side default (SQLAlchemy would fill it in)."""
    if conn.dialect.name != "postgresql" or len(rows) < 2:
        return False
    keys = rows[0].keys()
    return not any(column.default is not None and column.key not in keys for column in table.c)


def _next_ids(conn: Connection, table: Table, count: int) -> list[int]:
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", (table.fullname, count)
        )
        return sorted(new_id for (new_id,) in cursor.fetchall())


class _Unnest:
    """The rows of a batch as one array per column, each cast to the column's type, for one statement."""

    def __init__(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        self.conn = conn
        dialect = conn.dialect
        self.quote = quote = dialect.identifier_preparer.quote
        keys = list(rows[0])
        self.names = [quote(key) for key in keys]
        casts, self.arrays = [], []
        for key in keys:
            column_type = table.c[key].type
            process = column_type.dialect_impl(dialect).bind_processor(dialect)  # JSON, UTC timestamps, …
            values = [row[key] for row in rows]
            values = _one_type([process(value) for value in values] if process else values)
            self.arrays.append(values)
            # Binary: the text form of an array escapes every quote in every element (JSON is full of them),
            # which costs more than the statement itself. psycopg cannot type an array of only NULLs in binary.
            placeholder = "%s" if all(value is None for value in values) else "%b"
            casts.append(f"{placeholder}::{column_type.compile(dialect=dialect)}[]")
        self.target = dialect.identifier_preparer.format_table(table)
        self.source = f"unnest({', '.join(casts)}) AS batch({', '.join(self.names)})"

    def insert(self, conflict_columns: Sequence[str] = (), returning: Sequence[str] = ()) -> list[tuple[Any, ...]]:
        names = ", ".join(self.names)
        sql = f"INSERT INTO {self.target} ({names}) SELECT {names} FROM {self.source}"
        if conflict_columns:
            sql += f" ON CONFLICT ({', '.join(map(self.quote, conflict_columns))}) DO NOTHING"
        if returning:
            sql += f" RETURNING {', '.join(map(self.quote, returning))}"
        return self._execute(sql, fetch=bool(returning))

    def update(self, columns: Sequence[str]) -> None:
        assignments = ", ".join(f"{self.quote(c)} = batch.{self.quote(c)}" for c in columns)
        self._execute(f"UPDATE {self.target} SET {assignments} FROM {self.source} WHERE {self.target}.id = batch.id")

    def _execute(self, sql: str, *, fetch: bool = False) -> list[tuple[Any, ...]]:
        driver = self.conn.connection.driver_connection
        with driver.cursor() as cursor:  # same connection, same transaction
            try:
                cursor.execute(sql, self.arrays)
            except driver.Error as exc:  # as SQLAlchemy raises it elsewhere, so callers catch one kind (DBAPIError)
                raise DBAPIError.instance(sql, None, exc, type(driver).Error) from None
            return [tuple(row) for row in cursor.fetchall()] if fetch else []


def _one_type(values: list[Any]) -> list[Any]:
    """The values as one Python type, as psycopg needs to send them as one array: ints among floats become
    floats (a confidence of 1 beside 0.87). Anything else mixed is a caller's mistake, refused here by name."""
    kinds = {type(value) for value in values if value is not None}
    if len(kinds) < 2:
        return values
    if kinds <= {int, float}:
        return [None if value is None else float(value) for value in values]
    raise TypeError(f"a column's values mix {', '.join(sorted(kind.__name__ for kind in kinds))}")
