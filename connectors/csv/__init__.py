"""CSV and JSON Lines exports of another helpdesk (osTicket, Zammad, a spreadsheet): `kind: csv`, read only.

What a team migrating to the hub does first. The kind is this folder, `mappings/csv.yaml` (copy it to rename
columns) and one entry point in `pyproject.toml`:

- `config`: `CsvSource`, the source's settings (files, format, delimiter, encoding, columns);
- `source`: `CsvConnector`, which pages through the files by byte ranges and decodes each row — its docstring
  states the incremental contract (none: every run offers every row, the landing key dedupes).

A ticket's comments (a second file of rows naming their ticket) become its comments through the same intake as
a ticket system's timeline (`itsm_core/sync/related.py`).
"""

from __future__ import annotations

from connectors.csv.config import CsvSource
from connectors.csv.source import CsvConnector
from connectors.registry import ConnectorKind
from itsm_core.sync.related import RelatedRecords

CSV = ConnectorKind(
    name="csv",
    config=CsvSource,
    connector=CsvConnector,
    mappings={"tickets": "csv"},
    intake=RelatedRecords.for_source,
    description="tickets (and their comments) from CSV or JSON Lines exports of another helpdesk",
)
