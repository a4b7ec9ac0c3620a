"""Writing a report run's files: a CSV and a Parquet file per report, one XLSX workbook with a sheet per report, and
the HTML page (`write_page`).

Each file is written under a temporary name in its folder and renamed into place (atomic on one file system): a
reader never sees half a file, and a failed run leaves the previous file as it was. Names carry the definition,
the report and the period: ``monthly-service-review_backlog_2026-11.csv``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

#: The media type of each kind of file a run writes, for the mail that sends them.
MEDIA_TYPES = {
    ".html": "text/html",
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".parquet": "application/vnd.apache.parquet",
}


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _naive(frame: pd.DataFrame) -> pd.DataFrame:
    """Excel has no time zones: UTC instants are written as UTC wall-clock times (the column names say so)."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, stem: str, formats: list[str]) -> list[Path]:
    """The files of one run (`stem` = definition and period): every table in every format; the paths written."""
    written: list[Path] = []
    for report, frame in tables.items():
        if "csv" in formats:
            written.append(_atomic(folder / f"{stem.replace('@', report)}.csv",
                                   lambda p, f=frame: f.to_csv(p, index=False, encoding="utf-8")))  # fmt: skip
        if "parquet" in formats:
            written.append(_atomic(folder / f"{stem.replace('@', report)}.parquet",
                                   lambda p, f=frame: f.to_parquet(p, index=False, engine="pyarrow")))  # fmt: skip
    if "xlsx" in formats:

        def workbook(path: Path) -> None:
            with pd.ExcelWriter(path, engine="openpyxl") as excel:
                for report, frame in tables.items():
                    _naive(frame).to_excel(excel, sheet_name=report[:31], index=False)

        written.append(_atomic(folder / f"{stem.replace('_@', '')}.xlsx", workbook))
    return written


def write_page(page: str, path: Path) -> Path:
    """The HTML page of a run (`html.render_page`), written like the tables: atomically."""
    return _atomic(path, lambda p: p.write_text(page, encoding="utf-8"))
