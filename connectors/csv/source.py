"""Tickets from CSV or JSON Lines exports: one row (one line) per ticket, and optionally a file of comment rows.

**Incremental contract.** None is kept (``incremental = False``, no watermark): every run offers every row of
every tickets file, and the store's landing key (source, ticket id, sha256 of the payload) makes a row seen
before a no-op. A row whose values changed — or that gained a comment, since a ticket's comments are part of its
payload — lands again and updates its ticket; a ticket's comments are added once each, by their identity.

**Identity.** A ticket is its value in `id_column` (``"1042"``). When an id appears on more than one row (a
folder of monthly exports, a ticket exported twice), the last row in file-name then line order is offered and the
earlier ones are skipped, so two versions never take turns at each run. A row without an id is offered as
``"<file>:<line>"`` and refused by `decode` (quarantined with the reason). Comments are
``comment/<ticket id>/<comment id>``, or ``…/sha256:<hash of time, author and body>`` when the comments file has
no id column value: namespaced by their ticket, a comment number that restarts at 1 per ticket is still unique.

**Pages.** Planned by reading each tickets file once: `page_size` rows per page, each page a byte range
``{"file", "start", "end", "line", "size", "mtime_ns"}`` (plus ``"skip"``, lines of ids superseded by a later
row). Row boundaries are byte offsets counted as the rows are read, right also when quoted values hold line
breaks. `fetch_page` seeks to `start` and reads up to `end`: memory per page is its rows, whatever the file's
size. A file changed since it was planned (its size or modification time) fails the run rather than be read at
offsets that no longer fall on rows; the next run plans it again. Planning keeps each ticket id once (to find
those repeated): its memory grows with the number of tickets, not with their bytes.

**Comments.** Indexed once per run, on the first fetch: ticket id → byte offset and line of each of its comment
rows (memory grows with the number of comments, not with their bytes), then read by seeking. A comment row that
names no ticket is left out with a warning; one that cannot be read refuses its ticket, whole, with the reason.

**Payloads** are canonical JSON (sorted keys, compact) of the row as read: ``{"file", "line", "columns",
"values"}`` for CSV, ``{"file", "line", "text"}`` for JSON Lines, with ``"comments"`` (each comment row in the
same shape, in file order) when a comments file is configured. A row that cannot be read as it stands — bytes
that are not valid in the file's `encoding`, quoting the CSV reader refuses — keeps its bytes instead
(``"raw_b64"``): `decode` refuses it with the reason, and a replay after fixing `encoding` reads it.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal
from zoneinfo import ZoneInfo

from connectors.base import TICKETS, SourceConnector
from connectors.csv.config import CommentColumns, CsvSource
from itsm_core import jsondoc
from itsm_core.errors import HubError, ParseError
from itsm_core.models import RawRecord, utcnow

log = logging.getLogger("itsm.connectors.csv")

Format = Literal["csv", "jsonl"]
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
#: A field may hold this many characters (the csv module's default, 128 Ki, is short for pasted logs). The
#: limit is the csv module's, for the whole process: it is raised here, never lowered.
MAX_FIELD_CHARS = 16 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
#: Longer ids are not ticket numbers (a wrong `id_column`); the store keeps identities up to 500 characters.
MAX_ID_CHARS = 200
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes the encoding could not decode, kept by surrogateescape
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?")
_TRUE = frozenset({"true", "yes", "y", "1", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "f"})


class CsvFileError(HubError):
    """A file as a whole cannot be read as configured: no header, no id column, a quote never closed. The
    message names the file, the line and what to change; nothing of the file is guessed."""


class CsvFileChanged(CsvFileError, OSError):
    """A file changed between the plan and the fetch of its rows: the run stops (an `OSError`, as a source that
    is away: not retried within the run) and the next one plans the file again."""


@dataclass(frozen=True)
class _Row:
    """One row as read: its byte range and first line; `values` (CSV, may hold undecoded bytes as surrogates) or
    `text` (a JSON line), and its bytes as well when it cannot be read as it stands."""

    start: int
    end: int
    line: int
    values: list[str] | None = None
    text: str | None = None
    raw: bytes | None = None


class _Lines:
    """The lines of a binary file from `offset` (line `line` + 1 on), as text for `csv.reader`, counting what they
    consume; they stop at `end`.

    Before ``next(reader)``, `consumed` is where the next row starts: the reader asks for one line at a time and
    never reads ahead, also when a quoted value spans lines. Bytes the encoding cannot decode become lone
    surrogates (``surrogateescape``), so that row boundaries are found whatever the row holds.
    """

    def __init__(self, file: BinaryIO, encoding: str, offset: int, line: int, end: int | None = None) -> None:
        self.file = file
        self.encoding = encoding
        self.consumed = offset
        self.line = line  # the number of the last line handed out
        self.end = end
        self.exhausted = False
        self.raw: list[bytes] = []  # the bytes handed out since the last `clear`

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.end is not None and self.consumed >= self.end:
            self.exhausted = True
            raise StopIteration
        chunk = self.file.readline()
        if not chunk:
            self.exhausted = True
            raise StopIteration
        self.consumed += len(chunk)
        self.line += 1
        self.raw.append(chunk)
        return chunk.decode(self.encoding, "surrogateescape")


@dataclass(frozen=True)
class _Comments:
    """The comments file of one run: ticket id → (byte offset, line) of each of its rows, in file order."""

    path: Path
    name: str
    format: Format
    header: list[str] | None
    stat: tuple[int, int]
    rows: dict[str, list[tuple[int, int]]]


class CsvConnector(SourceConnector):
    incremental = False  # every row on every run; the landing key makes an unchanged row a no-op
    payload_format = "json"

    def __init__(self, source: CsvSource) -> None:
        self.name = source.name
        self.tickets = source.tickets
        self.pattern = source.pattern
        self.comments = source.comments
        self.format = source.format
        self.delimiter = source.delimiter
        self.encoding = source.encoding
        self.id_column = source.id_column
        self.comment_columns: CommentColumns = source.comment_columns
        self.zone = ZoneInfo(source.timezone)
        self.page_size = source.page_size
        self._index: _Comments | None = None
        self._index_lock = threading.Lock()

    # --- planning ----------------------------------------------------------------------------------------------

    def plan_pages(self, watermark: str | None = None, entity: str = TICKETS) -> Iterator[dict[str, Any]]:
        """Every row of every tickets file, `page_size` rows per page, files in name order (see the module's
        docstring); the same files plan the same pages."""
        files = self._ticket_files()
        if self.comments is not None and not self.comments.is_file():
            raise FileNotFoundError(
                f"comments file {self.comments} does not exist; export the comments there, or fix or remove "
                "`comments` in the source's config"
            )
        pages: list[dict[str, Any]] = []
        last: dict[str, tuple[int, str, int]] = {}  # ticket id → (page, file, line) of its last row so far
        repeated: list[str] = []
        for path, name in files:
            stat = path.stat()
            rows = 0
            for chunk in _batches(self._scan(path, name), self.page_size):
                page = {
                    "file": name,
                    "start": chunk[0][0].start,
                    "end": chunk[-1][0].end,
                    "line": chunk[0][0].line,
                    "size": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns,
                }
                pages.append(page)
                rows += len(chunk)
                for row, ticket_id in chunk:
                    if ticket_id is None:
                        continue
                    earlier = last.get(ticket_id)
                    if earlier is not None:
                        pages[earlier[0]].setdefault("skip", []).append(earlier[2])
                        repeated.append(f"id {ticket_id}: {earlier[1]} line {earlier[2]}, then {name} line {row.line}")
                    last[ticket_id] = (len(pages) - 1, name, row.line)
            log.info("%s: %s has %d row(s)", self.name, name, rows)
        for page in pages:
            if "skip" in page:
                page["skip"].sort()
        if repeated:
            log.warning(
                "%s: %d row(s) repeat a ticket id of a later row and are skipped (the last row of an id is "
                "imported): %s%s",
                self.name,
                len(repeated),
                "; ".join(repeated[:3]),
                "; …" if len(repeated) > 3 else "",
            )
        return iter(pages)

    def _ticket_files(self) -> list[tuple[Path, str]]:
        """(path, name in pages) of every tickets file, in name order; the comments file is never one."""
        if self.tickets.is_file():
            return [(self.tickets, self.tickets.name)]
        if not self.tickets.is_dir():
            raise FileNotFoundError(
                f"tickets file or folder {self.tickets} does not exist; export the tickets there or fix `tickets` "
                "in the source's config"
            )
        comments = self.comments.resolve() if self.comments is not None else None
        found = [p for p in self.tickets.glob(self.pattern) if p.is_file() and p.resolve() != comments]
        if not found:
            log.warning("%s: no file in %s matches %r", self.name, self.tickets, self.pattern)
        return sorted(((p, p.relative_to(self.tickets).as_posix()) for p in found), key=lambda pair: pair[1])

    def _root(self) -> Path:
        return self.tickets if self.tickets.is_dir() else self.tickets.parent

    def _scan(self, path: Path, name: str) -> Iterator[tuple[_Row, str | None]]:
        """Every row of a tickets file with its ticket id (None: it has none)."""
        with path.open("rb") as file:
            rows, header, id_index = self._open(file, name, self.id_column, "id_column", "each ticket's number")
            for row in rows:
                yield row, _usable(self._key(row, header, id_index, self.id_column))

    # --- reading -----------------------------------------------------------------------------------------------

    def _format_of(self, name: str) -> Format:
        if self.format != "auto":
            return self.format
        return "jsonl" if Path(name).suffix.lower() in JSONL_SUFFIXES else "csv"

    def _open(
        self, file: BinaryIO, name: str, key: str, setting: str, what: str
    ) -> tuple[Iterator[_Row], list[str] | None, int | None]:
        """The rows of `file` after its header (CSV), the header, and the index of its column `key`."""
        lines = _Lines(file, self.encoding, 0, 0)
        if self._format_of(name) == "jsonl":
            return self._jsonl_rows(lines), None, None
        header = self._header(lines, name)
        if header is None:  # an empty file
            return iter(()), None, None
        if key not in header:
            hint = ""
            if len(header) == 1 and (other := next((d for d in ",;\t|" if d in header[0]), None)):
                hint = f"; the header looks separated by {other!r}: set `delimiter: {other!r}`"
            raise CsvFileError(
                f"{name} has no column {key!r} (its columns: {', '.join(repr(c) for c in header)}); set `{setting}` "
                f"in the source's config to the column that holds {what}{hint}"
            )
        return self._csv_rows(lines, name), header, header.index(key)

    def _header(self, lines: _Lines, name: str) -> list[str] | None:
        reader = csv.reader(lines, delimiter=self.delimiter, strict=True)
        try:
            header = next((row for row in reader if row), None)
        except csv.Error as exc:
            raise CsvFileError(f"{name}: the header row cannot be read as CSV ({exc}); fix it and run again") from None
        if header is None:
            return None
        columns = [column.strip() for column in header]
        columns[0] = columns[0].lstrip("\ufeff").strip()  # a byte-order mark read with another encoding than utf-8-sig
        if any(_UNDECODED.search(column) for column in columns):
            raise CsvFileError(
                f"{name}: the header row holds bytes that are not valid {self.encoding}; set `encoding` in the "
                "source's config to the export's (e.g. cp1252 or latin-1), or save the export as UTF-8"
            )
        named = [column for column in columns if column]
        twice = sorted({column for column in named if named.count(column) > 1})
        if twice:
            raise CsvFileError(
                f"{name}: the header names {', '.join(repr(c) for c in twice)} more than once; rename the repeats "
                "(each column is a field the mapping reads)"
            )
        return columns

    def _csv_rows(self, lines: _Lines, name: str) -> Iterator[_Row]:
        reader = csv.reader(lines, delimiter=self.delimiter, strict=True)
        while True:
            start, line = lines.consumed, lines.line + 1
            lines.raw.clear()
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if lines.exhausted:  # the end of the file inside a quoted value
                    raise CsvFileError(
                        f"{name}: the row on line {line} opens a quoted value that is never closed (the file ends "
                        'inside it); close the quote (a quote inside a value is written twice: "") and run again'
                    ) from None
                if "field larger than field limit" in str(exc):
                    raise CsvFileError(
                        f"{name}: the row on line {line} has a value of over {MAX_FIELD_CHARS} characters, most "
                        "likely a quote that is never closed; fix the quotes and run again"
                    ) from None
                # quoting the reader refuses (e.g. "a"b): the row's lines are kept as bytes, decode says why
                yield _Row(start, lines.consumed, line, raw=b"".join(lines.raw))
                continue
            if not values:  # a blank line
                continue
            unreadable = any(_UNDECODED.search(value) for value in values)
            yield _Row(start, lines.consumed, line, values=values, raw=b"".join(lines.raw) if unreadable else None)

    def _jsonl_rows(self, lines: _Lines) -> Iterator[_Row]:
        while True:
            start, line = lines.consumed, lines.line + 1
            lines.raw.clear()
            try:
                text = next(lines)
            except StopIteration:
                return
            text = text.rstrip("\r\n").lstrip("\ufeff") if line == 1 else text.rstrip("\r\n")
            if not text.strip():
                continue
            if _UNDECODED.search(text):
                yield _Row(start, lines.consumed, line, raw=b"".join(lines.raw))
            else:
                yield _Row(start, lines.consumed, line, text=text)

    def _key(self, row: _Row, header: list[str] | None, index: int | None, column: str) -> str | None:
        """The row's value in `column` (its ticket id), if it can be read."""
        if row.values is not None and index is not None:
            value = row.values[index] if index < len(row.values) else ""
            return None if _UNDECODED.search(value) else _scalar_id(value)
        if row.text is not None:
            try:
                document = json.loads(row.text)
            except ValueError:
                return None
            return _scalar_id(document.get(column)) if isinstance(document, dict) else None
        return None

    def _entry(self, row: _Row, name: str, header: list[str] | None) -> dict[str, Any]:
        """The row as a payload holds it (a ticket, or one of its comments)."""
        entry: dict[str, Any] = {"file": name, "line": row.line}
        if header is not None:
            entry["columns"] = header
        if row.raw is not None:
            entry["raw_b64"] = base64.b64encode(row.raw).decode("ascii")
        elif row.values is not None:
            entry["values"] = row.values
        else:
            entry["text"] = row.text
        return entry

    # --- fetching ----------------------------------------------------------------------------------------------

    def page_watermark(self, page: dict[str, Any], watermark: str | None) -> str | None:
        return None

    def fetch_page(self, page: dict[str, Any]) -> list[RawRecord]:
        name = page["file"]
        path = self._root() / name
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed since the plan: its rows come with the next run that finds it
            log.info("%s: skipping rows of %s from line %d: the file is gone", self.name, name, page["line"])
            return []
        if (stat.st_size, stat.st_mtime_ns) != (page["size"], page["mtime_ns"]):
            raise CsvFileChanged(
                f"{name} changed while it was being read (it was {page['size']} bytes, now {stat.st_size}); "
                "the run stops here and the next one reads it again — write exports elsewhere and move them in"
            )
        comments = self._comment_index()
        skip = set(page.get("skip", ()))
        records = []
        with path.open("rb") as file, comments.path.open("rb") if comments else nullcontext() as comment_file:
            _, header, id_index = self._open(file, name, self.id_column, "id_column", "each ticket's number")
            file.seek(page["start"])
            lines = _Lines(file, self.encoding, page["start"], page["line"] - 1, page["end"])
            rows = self._jsonl_rows(lines) if self._format_of(name) == "jsonl" else self._csv_rows(lines, name)
            for row in rows:
                if row.line in skip:
                    continue
                entry = self._entry(row, name, header)
                ticket_id = _usable(self._key(row, header, id_index, self.id_column))
                if comments is not None:
                    entry["comments"] = self._comments_of(comments, comment_file, ticket_id)
                payload = jsondoc.dumps(entry)
                records.append(
                    RawRecord(
                        external_id=ticket_id or f"{name}:{row.line}",
                        payload=payload,
                        payload_format=self.payload_format,
                        received_at=utcnow(),
                        locator=f"{name}:{row.line}",
                    )
                )
        return records

    def _comment_index(self) -> _Comments | None:
        """This run's index of the comments file (built on the first fetch), checked to be still the file's."""
        if self.comments is None:
            return None
        with self._index_lock:
            if self._index is None:
                self._index = self._build_index(self.comments)
            index = self._index
        stat = index.path.stat()
        if (stat.st_size, stat.st_mtime_ns) != index.stat:
            raise CsvFileChanged(
                f"{index.name} changed while it was being read; the run stops here and the next one reads it again"
            )
        return index

    def _build_index(self, path: Path) -> _Comments:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"comments file {path} does not exist; export the comments there, or fix or remove `comments` in "
                "the source's config"
            ) from None
        column = self.comment_columns.ticket
        rows: dict[str, list[tuple[int, int]]] = {}
        orphans: list[int] = []
        count = 0
        with path.open("rb") as file:
            found, header, index = self._open(
                file, path.name, column, "comment_columns.ticket", "the number of the ticket each comment is on"
            )
            for row in found:
                count += 1
                ticket_id = _usable(self._key(row, header, index, column))
                if ticket_id is None:
                    orphans.append(row.line)
                else:
                    rows.setdefault(ticket_id, []).append((row.start, row.line))
        log.info("%s: %s has %d comment(s) on %d ticket(s)", self.name, path.name, count, len(rows))
        if orphans:
            log.warning(
                "%s: %d comment row(s) of %s name no ticket in %r (or cannot be read) and are left out; lines %s",
                self.name,
                len(orphans),
                path.name,
                column,
                ", ".join(map(str, orphans[:10])) + (", …" if len(orphans) > 10 else ""),
            )
        return _Comments(path, path.name, self._format_of(path.name), header, (stat.st_size, stat.st_mtime_ns), rows)

    def _comments_of(self, index: _Comments, file: BinaryIO | None, ticket_id: str | None) -> list[dict[str, Any]]:
        if ticket_id is None or file is None:
            return []
        entries = []
        for offset, line in index.rows.get(ticket_id, ()):
            file.seek(offset)
            lines = _Lines(file, self.encoding, offset, line - 1)
            rows = self._jsonl_rows(lines) if index.format == "jsonl" else self._csv_rows(lines, index.name)
            row = next(rows, None)
            if row is not None:
                entries.append(self._entry(row, index.name, index.header))
        return entries

    def close(self) -> None:
        self._index = None  # the next run indexes the comments file again

    # --- decoding ----------------------------------------------------------------------------------------------

    def decode(self, payload: bytes, entity: str = TICKETS) -> dict[str, Any]:
        """``{"ticket": {column: value}, "comments": [...], "source_file", "line"}`` (pure: no I/O).

        Values are the export's text (JSON Lines: its JSON values); a date-time in ISO 8601 form becomes an aware
        datetime (without an offset: in the source's `timezone`). Raises `ParseError` naming the file, the line
        and what to fix."""
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise ParseError(f"not a payload of the csv connector (not JSON: {exc})") from None
        if not isinstance(data, dict) or not {"file", "line"} <= data.keys():
            raise ParseError("not a payload of the csv connector (no file and line)")
        where = f"{data['file']} line {data['line']}"
        ticket = self._fields(data, where)
        ticket_id = _scalar_id(ticket.get(self.id_column))
        if ticket_id is None:
            raise ParseError(
                f"{where}: no ticket id in the column {self.id_column!r}; give the row its ticket number (or set "
                "`id_column` to the column that holds it)"
            )
        if len(ticket_id) > MAX_ID_CHARS:
            raise ParseError(
                f"{where}: the id in {self.id_column!r} is {len(ticket_id)} characters long, not a ticket number; "
                "is `id_column` the right column?"
            )
        comments = [self._comment(entry, ticket_id) for entry in data.get("comments") or []]
        return {
            "ticket": {column: self._when_text(value) for column, value in ticket.items()},
            "comments": [comment for comment in comments if comment is not None],
            "source_file": data["file"],
            "line": data["line"],
        }

    def _fields(self, entry: dict[str, Any], where: str) -> dict[str, Any]:
        """The row's values by column (CSV) or its object (JSON Lines)."""
        csv_row = "columns" in entry
        if "raw_b64" in entry:
            raw = base64.b64decode(entry["raw_b64"])
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                raise ParseError(
                    f"{where}: byte 0x{raw[exc.start]:02x} (byte {exc.start + 1} of the row) is not valid "
                    f"{self.encoding}; set `encoding` in the source's config to the export's (e.g. cp1252 or "
                    "latin-1) or save the export as UTF-8, then replay"
                ) from None
            if not csv_row:
                return _json_object(text.rstrip("\r\n"), where)
            values = self._csv_values(text, where)
        elif csv_row:
            values = entry["values"]
        else:
            return _json_object(entry["text"], where)
        columns = entry["columns"]
        if len(values) != len(columns):
            raise ParseError(
                f"{where}: {len(values)} values for the {len(columns)} columns of the header; a value that holds "
                f"the delimiter {self.delimiter!r} or a line break must be in double quotes"
            )
        return {column: value for column, value in zip(columns, values, strict=True) if column}

    def _csv_values(self, text: str, where: str) -> list[str]:
        try:
            rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter, strict=True)]
        except csv.Error as exc:
            raise ParseError(
                f'{where}: not a valid CSV row ({exc}); a double quote inside a quoted value is written twice ("")'
            ) from None
        rows = [row for row in rows if row]
        if len(rows) != 1:
            raise ParseError(f"{where}: not a single CSV row ({len(rows)} rows); check its double quotes")
        return rows[0]

    def _comment(self, entry: dict[str, Any], ticket_id: str) -> dict[str, Any] | None:
        """One comment row as `RelatedRecords` takes it; None for one without text."""
        columns = self.comment_columns
        where = f"{entry.get('file')} line {entry.get('line')} (a comment of ticket {ticket_id})"
        row = self._fields(entry, where)
        body = row.get(columns.body)
        body = "" if body is None else str(body)
        if not body.strip():
            return None
        author = row.get(columns.author)
        author = str(author).strip() if author not in (None, "") else None
        created = row.get(columns.created_at)
        own_id = _scalar_id(row.get(columns.id))
        if own_id is None:  # no id: the comment is its time, author and text
            content = json.dumps([str(created or ""), author or "", body], ensure_ascii=False)
            own_id = "sha256:" + hashlib.sha256(content.encode()).hexdigest()[:20]
        return {
            "external_id": f"comment/{ticket_id}/{own_id}",
            "body": body,
            "public": _public(row.get(columns.public), where, columns.public),
            "author": author or None,
            "created_at": self._when(created),
        }

    def _when(self, value: Any) -> datetime | None:
        """An ISO 8601 date-time as an aware UTC datetime (without an offset: in `timezone`); else None."""
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, str) and value.strip():
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                return None
        else:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return moment.astimezone(UTC)

    def _when_text(self, value: Any) -> Any:
        """A ticket's value: a date-time in ISO 8601 form becomes an aware datetime, anything else stays."""
        if isinstance(value, str) and _DATETIME.fullmatch(value.strip()):
            return self._when(value) or value
        return value


def _batches(rows: Iterator[tuple[_Row, str | None]], size: int) -> Iterator[list[tuple[_Row, str | None]]]:
    batch: list[tuple[_Row, str | None]] = []
    for item in rows:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _scalar_id(value: Any) -> str | None:
    """An id as text: a string stripped, an integer (or integral float) in digits; anything else is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text or None
    return None


def _usable(ticket_id: str | None) -> str | None:
    """The id as an identity, if it can be one (decode refuses the longer ones with the reason)."""
    return ticket_id if ticket_id is not None and len(ticket_id) <= MAX_ID_CHARS else None


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"{where}: not valid JSON ({exc}); each line of a JSON Lines file is one object") from None
    if not isinstance(document, dict):
        raise ParseError(
            f'{where}: a JSON {type(document).__name__} where an object ({{"id": …, …}}) was expected; each line of '
            "a JSON Lines file is one ticket (or comment) as a JSON object"
        )
    return document


def _public(value: Any, where: str, column: str) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ParseError(
        f"{where}: {column} is {value!r}; write true or false (yes/no, 1/0) — a comment is public unless it says "
        "false, and an internal note must not be shown to the requester by mistake"
    )
