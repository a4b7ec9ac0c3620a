"""The row-level export `ticket_export` on the hand-built store of test_queries (both databases), read back from
each format, written two rows at a time.

November 2026 in Paris holds tickets 1, 3 (23:30 UTC on 31 October), 4 and 6; 2 is a December ticket, 5 September's.
"""

from __future__ import annotations

from datetime import datetime

import openpyxl
import pandas as pd
import pyarrow.parquet as pq

from itsm_core.reports import export
from itsm_core.reports.export import NAMES, export_tickets
from itsm_core.reports.spec import ReportFilters
from tests.itsm_core.reports.test_queries import ALL, NOVEMBER, at, hub  # noqa: F401  (hub: the fixture)

#: id: (external ref, status, group, first-response clock, resolution clock, created (UTC), resolved (UTC))
EXPECTED = {
    1: ("mail:1", "resolved", "net", "met", "met", "2026-11-02 08:00", "2026-11-02 13:00"),
    3: ("glpi:3", "in_progress", "desk", "breached", "running", "2026-10-31 23:30", None),
    4: ("mail:4", "pending", "net", None, "paused", "2026-11-15 12:00", None),
    6: ("glpi:6", "resolved", "net", None, "breached", "2026-11-20 10:00", "2026-11-21 16:00"),
}


def test_every_format_holds_the_periods_tickets_written_in_chunks(hub, tmp_path):  # noqa: F811
    folder = tmp_path / "out"
    with hub.connect() as conn:
        paths = export_tickets(conn, NOVEMBER, ALL, folder, "monthly_tickets_2026-11", ["csv", "parquet", "xlsx"],
                               chunk=2)  # fmt: skip
    assert [p.name for p in paths] == [f"monthly_tickets_2026-11.{ext}" for ext in ("csv", "parquet", "xlsx")]
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)  # no temporary file left

    csv = pd.read_csv(paths[0], dtype=str, keep_default_na=False)
    assert list(csv.columns) == NAMES and csv["ticket"].tolist() == ["T-000001", "T-000003", "T-000004", "T-000006"]
    for row in csv.to_dict("records"):
        ref, status, group, first, resolution, created, resolved = EXPECTED[int(row["id"])]
        assert (row["external_refs"], row["status"], row["group"]) == (ref, status, group)
        assert (row["sla_first_response"], row["sla_resolution"]) == (first or "", resolution)
        assert row["created_at_utc"] == at(created).isoformat()  # "2026-11-02T08:00:00+00:00"
        assert row["resolved_at_utc"] == (at(resolved).isoformat() if resolved else "")

    parquet = pq.ParquetFile(paths[1])
    assert parquet.metadata.num_row_groups == 2 and parquet.metadata.num_rows == 4  # a row group per chunk of 2
    frame = parquet.read().to_pandas()
    assert str(frame["created_at_utc"].dtype) == "datetime64[us, UTC]"
    assert frame["created_at_utc"].tolist() == [pd.Timestamp(at(EXPECTED[i][5])) for i in (1, 3, 4, 6)]

    sheet = openpyxl.load_workbook(paths[2], read_only=True)["tickets"]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == NAMES and len(values) == 5
    assert values[2][NAMES.index("created_at_utc")] == datetime(2026, 10, 31, 23, 30)  # UTC wall clock
    assert values[1][NAMES.index("priority")] == 1 and values[1][NAMES.index("external_refs")] == "mail:1"


def test_filters_apply_and_a_full_sheet_continues_on_the_next(hub, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(export, "XLSX_ROWS_PER_SHEET", 3)  # the header and two tickets a sheet
    with hub.connect() as conn:
        (xlsx,) = export_tickets(conn, NOVEMBER, ALL, tmp_path, "all", ["xlsx"], chunk=3)
        (glpi,) = export_tickets(conn, NOVEMBER, ReportFilters(sources=["glpi"]), tmp_path, "glpi", ["csv"])
    book = openpyxl.load_workbook(xlsx, read_only=True)
    assert book.sheetnames == ["tickets", "tickets_2"]
    assert [[row[0] for row in book[name].iter_rows(values_only=True)] for name in book.sheetnames] == [
        ["ticket", "T-000001", "T-000003"], ["ticket", "T-000004", "T-000006"]]  # fmt: skip
    assert pd.read_csv(glpi)["id"].tolist() == [3, 6]


def test_no_ticket_still_gives_files_with_their_columns(hub, tmp_path):  # noqa: F811
    from datetime import date

    from itsm_core.reports.period import between

    june = between(date(2026, 6, 1), date(2026, 6, 30), "UTC")
    with hub.connect() as conn:
        csv, parquet, xlsx = export_tickets(conn, june, ALL, tmp_path, "none", ["csv", "parquet", "xlsx"])
    assert pd.read_csv(csv).empty and list(pd.read_csv(csv).columns) == NAMES
    assert pq.read_table(parquet).num_rows == 0 and pq.read_table(parquet).column_names == NAMES
    assert [list(r) for r in openpyxl.load_workbook(xlsx, read_only=True)["tickets"].iter_rows(values_only=True)] == [
        NAMES]  # fmt: skip
