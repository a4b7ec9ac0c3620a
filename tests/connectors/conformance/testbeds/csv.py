"""`kind: csv`: a tickets CSV export and its comments file, as another helpdesk writes them (quoted line breaks)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.connectors.conformance.testbed import SOURCE, Testbed

EPOCH = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
COLUMNS = ["id", "subject", "description", "status", "priority", "requester_email", "created_at"]
COMMENT_COLUMNS = ["ticket_id", "id", "body", "author", "created_at", "public"]


class CsvTestbed(Testbed):
    def __init__(self, base: Path) -> None:
        super().__init__(base)
        base.mkdir(parents=True, exist_ok=True)
        self.tickets = base / "tickets.csv"
        self.comments = base / "comments.csv"
        self._write(self.tickets, [COLUMNS])
        self._write(self.comments, [COMMENT_COLUMNS])
        self.added = 0

    def source(self, page_size: int) -> dict[str, Any]:
        return {
            "name": SOURCE, "kind": "csv", "tickets": str(self.tickets), "comments": str(self.comments),
            "page_size": page_size,
        }  # fmt: skip

    def add_tickets(self, count: int) -> None:
        rows, comments = [], []
        for number in range(self.added, self.added + count):
            created = EPOCH + timedelta(minutes=number)
            description = f"Printer {number} on floor {number % 7} shows a paper jam."
            if number % 2 == 0:  # a quoted value over several lines, a delimiter and quotes in it
                description += f'\nIt says "E{number}", then:\n  rollers, tray 2'
            rows.append(
                [
                    str(1000 + number),
                    f"Printer {number} is jammed",
                    description,
                    ("new", "Open", "pending")[number % 3],
                    ("High", "Normal", "Low")[number % 3],
                    f"user{number}@example.org",
                    created.strftime("%Y-%m-%d %H:%M:%S"),
                ]
            )
            for k in range(number % 3):  # 0, 1 or 2 comments
                comments.append(
                    [
                        str(1000 + number),
                        f"{number}-{k}",
                        f"Comment {k} on printer {number}:\ntried again",
                        "agent@example.org",
                        (created + timedelta(minutes=k + 1)).isoformat(),
                        ("yes", "no")[k % 2],
                    ]
                )
        self._write(self.tickets, rows)
        self._write(self.comments, comments)
        self.added += count

    def add_unreadable(self) -> None:
        """A row with a value too many: a comma outside quotes (the reader cannot tell which column is which)."""
        with self.tickets.open("a", encoding="utf-8", newline="") as file:
            file.write("99999,Imported long ago,From an old, unquoted export,new,Low,old@example.org,2020-01-01\r\n")

    @staticmethod
    def _write(path: Path, rows: list[list[str]]) -> None:
        with path.open("a", encoding="utf-8", newline="") as file:
            csv.writer(file).writerows(rows)


TESTBED = CsvTestbed
