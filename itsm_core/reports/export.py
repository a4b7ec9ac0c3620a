"""The row-level export `ticket_export`: one row per ticket created in the period, streamed from the database in
chunks (a server-side cursor on PostgreSQL) straight into CSV, Parquet (a row group per chunk) and XLSX (openpyxl's
write-only mode), so memory stays bounded by a chunk whatever the number of tickets.

It is not a standard report (it is a table of tickets, not figures): a definition asks for it by listing
`ticket_export` in its `reports`. Files are written like the reports' (`files.py`: a temporary name, then renamed),
named ``<definition>_tickets_<period>.<format>``; the XLSX export is a workbook of its own, a sheet of up to
`XLSX_ROWS_PER_SHEET` rows after another (tickets, tickets_2, …).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl import Workbook
from sqlalchemy import Connection, func, select

from itsm_core.reports.files import _atomic
from itsm_core.reports.period import Period
from itsm_core.reports.queries import CHUNK_ROWS, _kept, clocks, refs, stream, tickets
from itsm_core.reports.spec import ReportFilters
from itsm_core.store.tickets import format_ticket_id

#: The export's columns and their Parquet types; times are UTC (CSV: ISO 8601 with +00:00; XLSX: UTC wall clock).
COLUMNS: list[tuple[str, pa.DataType]] = [
    ("ticket", pa.string()), ("id", pa.int64()), ("external_refs", pa.string()), ("kind", pa.string()),
    ("status", pa.string()), ("priority", pa.int64()), ("impact", pa.int64()), ("urgency", pa.int64()),
    ("category", pa.string()), ("subcategory", pa.string()), ("group", pa.string()), ("assignee", pa.string()),
    ("source_type", pa.string()), ("tenant", pa.string()), ("title", pa.string()),
    ("created_at_utc", pa.timestamp("us", tz="UTC")), ("updated_at_utc", pa.timestamp("us", tz="UTC")),
    ("resolved_at_utc", pa.timestamp("us", tz="UTC")), ("closed_at_utc", pa.timestamp("us", tz="UTC")),
    ("sla_first_response", pa.string()), ("sla_resolution", pa.string()),
]  # fmt: skip
NAMES = [name for name, _ in COLUMNS]
SCHEMA = pa.schema(COLUMNS)
#: Excel's limit is 1,048,576 rows a sheet; a round number below it, header included.
XLSX_ROWS_PER_SHEET = 1_000_000
_TIMES = [index for index, (_, kind) in enumerate(COLUMNS) if pa.types.is_timestamp(kind)]


def _clock_state(metric: str) -> Any:
    return select(clocks.c.state).where(clocks.c.ticket_id == tickets.c.id, clocks.c.metric == metric).scalar_subquery()


def ticket_query(period: Period, filters: ReportFilters) -> Any:
    """The tickets created in the period (≥ start, < end) that the filters keep, by id, one row each in `COLUMNS`
    order but for the first (the id as people see it, added while writing). `external_refs` are "system:id",
    comma-joined (in no set order); the SLA columns are the clocks' states as the SLA engine last computed
    them (empty: no policy covers the ticket)."""
    joined_refs = select(func.aggregate_strings(refs.c.system + ":" + refs.c.external_id, ", ")).where(
        refs.c.ticket_id == tickets.c.id
    )
    t = tickets.c
    return (
        select(t.id, joined_refs.scalar_subquery(), t.kind, t.status, t.priority, t.impact, t.urgency, t.category,
               t.subcategory, t.assignment_group, t.assignee, t.source_type, t.tenant, t.title, t.created_at,
               t.updated_at, t.resolved_at, t.closed_at, _clock_state("first_response"), _clock_state("resolution"))
        .where(t.created_at >= period.start, t.created_at < period.end, *_kept(filters))
        .order_by(t.id)
    )  # fmt: skip


def _chunks(conn: Connection, period: Period, filters: ReportFilters, chunk: int) -> Iterator[list[tuple[Any, ...]]]:
    for rows in stream(conn, ticket_query(period, filters), chunk):
        yield [(format_ticket_id(row[0]), *row) for row in rows]


def _csv(conn: Connection, period: Period, filters: ReportFilters, chunk: int) -> Any:
    def write(path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as file:
            out = csv.writer(file)
            out.writerow(NAMES)
            for rows in _chunks(conn, period, filters, chunk):
                out.writerows([_iso(row) for row in rows])

    return write


def _iso(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(value.isoformat() if isinstance(value, datetime) else value for value in row)


def _parquet(conn: Connection, period: Period, filters: ReportFilters, chunk: int) -> Any:
    def write(path: Path) -> None:
        with pq.ParquetWriter(path, SCHEMA) as parquet:
            for rows in _chunks(conn, period, filters, chunk):
                columns = list(zip(*rows, strict=True))
                parquet.write_table(pa.Table.from_arrays(
                    [pa.array(values, type=kind) for values, (_, kind) in zip(columns, COLUMNS, strict=True)],
                    schema=SCHEMA))  # fmt: skip  # one row group per chunk
            # no ticket: the file still has the schema and no row group

    return write


def _xlsx(conn: Connection, period: Period, filters: ReportFilters, chunk: int) -> Any:
    def write(path: Path) -> None:
        book = Workbook(write_only=True)
        sheets, sheet, used = 0, None, XLSX_ROWS_PER_SHEET
        for rows in _chunks(conn, period, filters, chunk):
            for row in rows:
                if used == XLSX_ROWS_PER_SHEET:
                    sheets += 1
                    sheet = book.create_sheet("tickets" if sheets == 1 else f"tickets_{sheets}")
                    sheet.append(NAMES)
                    used = 1
                sheet.append(_naive(row))
                used += 1
        if sheet is None:
            book.create_sheet("tickets").append(NAMES)
        book.save(path)

    return write


def _naive(row: tuple[Any, ...]) -> list[Any]:
    """Excel has no time zones: UTC instants become UTC wall-clock times (the column names say so)."""
    values = list(row)
    for index in _TIMES:
        if values[index] is not None:
            values[index] = values[index].replace(tzinfo=None)
    return values


WRITERS = {"csv": _csv, "parquet": _parquet, "xlsx": _xlsx}


def export_tickets(
    conn: Connection, period: Period, filters: ReportFilters, folder: Path, stem: str, formats: list[str],
    chunk: int = CHUNK_ROWS,
) -> list[Path]:  # fmt: skip
    """Write the export in each of `formats` (one pass over the tickets each) as ``<stem>.<format>`` in `folder`,
    `chunk` rows at a time; the paths written."""
    # The HTML page is a manager's summary, not a row dump: the export is written in the data formats only.
    return [_atomic(folder / f"{stem}.{fmt}", WRITERS[fmt](conn, period, filters, chunk)) for fmt in formats
            if fmt in WRITERS]  # fmt: skip
