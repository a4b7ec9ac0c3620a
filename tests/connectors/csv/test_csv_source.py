"""`kind: csv`: pages by byte ranges, rows and comments read back exactly, refusals a person can act on, and a
re-run through the real pipeline (`ingest_page.fn`, as `sync-source` runs it) that changes only what changed."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import select

from connectors.base import TICKETS
from connectors.csv.config import CsvSource
from connectors.csv.source import CsvConnector, CsvFileChanged, CsvFileError
from flows.runtime import SourceRuntime, build_runtime
from flows.sync import ingest_page
from itsm_core.config import parse_config
from itsm_core.errors import ParseError
from itsm_core.store import Store
from itsm_core.store.tables import CommentRow, DeadLetterRow, ExternalRefRow, TicketRow
from itsm_core.sync.batch import BatchReport

HEADER = ["id", "subject", "description", "status"]
COMMENT_HEADER = ["ticket_id", "id", "body", "author", "created_at", "public"]


def write_csv(path: Path, rows: list[list[str]], *, bom: bool = False, delimiter: str = ",") -> list[int]:
    """Write `rows` (the first is the header) as Excel does (CRLF, quotes where needed); the byte offset at which
    each row starts, computed apart from the connector."""
    offsets, data = [], b"\xef\xbb\xbf" if bom else b""
    for row in rows:
        text = io.StringIO(newline="")
        csv.writer(text, delimiter=delimiter).writerow(row)
        offsets.append(len(data))
        data += text.getvalue().encode()
    path.write_bytes(data)
    return offsets


def connector(tmp_path: Path, **settings: Any) -> CsvConnector:
    values = {"kind": "csv", "name": "legacy", "tickets": tmp_path / "tickets.csv", **settings}
    return CsvConnector(CsvSource.model_validate(values))


def fetch_all(source: CsvConnector) -> list[Any]:
    return [record for page in source.plan_pages(None) for record in source.fetch_page(page)]


def ticket_rows(count: int, *, multiline: bool = True) -> list[list[str]]:
    rows = []
    for n in range(1, count + 1):
        text = f"Printer {n} is jammed"
        if multiline and n % 2:
            text += f'\r\nsays "E{n}", tray 2\nand\n\nstops'  # line breaks (CRLF, LF, an empty line), quotes, a comma
        rows.append([str(100 + n), f"Subject {n}", text, "new"])
    return rows


# --- pages -----------------------------------------------------------------------------------------------------


def test_pages_are_deterministic_json_and_hold_at_most_page_size_rows(tmp_path: Path) -> None:
    write_csv(tmp_path / "tickets.csv", [HEADER, *ticket_rows(10)])
    source = connector(tmp_path, page_size=3)
    pages = list(source.plan_pages(None))
    assert json.loads(json.dumps(pages)) == pages
    assert pages == list(connector(tmp_path, page_size=3).plan_pages(None))  # the same file, the same plan
    sizes = [len(source.fetch_page(page)) for page in pages]
    assert sizes == [3, 3, 3, 1]
    assert [page["end"] for page in pages[:-1]] == [page["start"] for page in pages[1:]]
    assert pages[-1]["end"] == (tmp_path / "tickets.csv").stat().st_size
    assert source.page_watermark(pages[0], None) is None and not source.incremental


def test_quoted_line_breaks_keep_every_row_whole_and_every_offset_right(tmp_path: Path) -> None:
    rows = ticket_rows(9)
    offsets = write_csv(tmp_path / "tickets.csv", [HEADER, *rows])
    data = (tmp_path / "tickets.csv").read_bytes()
    lines = [data[:offset].count(b"\n") + 1 for offset in offsets]  # the physical line each row starts on
    source = connector(tmp_path, page_size=2)
    pages = list(source.plan_pages(None))
    assert [page["start"] for page in pages] == offsets[1::2]
    assert [page["line"] for page in pages] == lines[1::2]
    records = [record for page in pages for record in source.fetch_page(page)]
    assert [record.external_id for record in records] == [row[0] for row in rows]
    for record, row, line in zip(records, rows, lines[1:], strict=True):
        decoded = source.decode(record.payload)
        assert decoded["ticket"] == dict(zip(HEADER, row, strict=True))
        assert (decoded["source_file"], decoded["line"]) == ("tickets.csv", line)
        assert record.locator == f"tickets.csv:{line}"
    assert '\r\nsays "E1", tray 2\nand\n\nstops' in source.decode(records[0].payload)["ticket"]["description"]


def test_a_payload_is_canonical_json_of_the_row_as_read(tmp_path: Path) -> None:
    write_csv(tmp_path / "tickets.csv", [HEADER, ["7", "Ünïcode ✓", "x", "new"]])
    (record,) = fetch_all(connector(tmp_path))
    expected = {"file": "tickets.csv", "line": 2, "columns": HEADER, "values": ["7", "Ünïcode ✓", "x", "new"]}
    assert record.payload == json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert record.payload_format == "json"


def test_blank_lines_are_no_rows_and_a_folder_is_read_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    write_csv(folder / "2024-02.csv", [HEADER, ["3", "c", "", "new"]])
    write_csv(folder / "2024-01.csv", [HEADER, ["1", "a", "", "new"], ["2", "b", "", "new"]])
    with (folder / "2024-01.csv").open("ab") as file:
        file.write(b"\r\n\r\n")
    (folder / "notes.txt").write_text("not an export")
    write_csv(folder / "comments.csv", [COMMENT_HEADER, ["1", "c1", "hello", "", "", ""]])  # matches *.csv too
    source = connector(tmp_path, tickets=folder, comments=folder / "comments.csv")
    assert [page["file"] for page in source.plan_pages(None)] == ["2024-01.csv", "2024-02.csv"]
    assert [record.external_id for record in fetch_all(source)] == ["1", "2", "3"]


# --- JSON Lines, encodings -------------------------------------------------------------------------------------


def test_json_lines_refuse_a_bad_line_and_read_the_others(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": 1, "subject": "first", "owner": {"email": "a@example.org"}}),
        '{"id": 2, "subject": "cut short',
        "",
        json.dumps(["id", 3]),
        json.dumps({"id": "4", "subject": "last", "created_at": "2024-03-01 14:05"}),
    ]
    (tmp_path / "tickets.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = connector(tmp_path, tickets=tmp_path / "tickets.ndjson", page_size=2, timezone="Europe/Paris")
    records = fetch_all(source)
    assert [record.external_id for record in records] == ["1", "tickets.ndjson:2", "tickets.ndjson:4", "4"]
    first = source.decode(records[0].payload)
    assert first["ticket"] == {"id": 1, "subject": "first", "owner": {"email": "a@example.org"}}
    with pytest.raises(ParseError, match=r"tickets.ndjson line 2: not valid JSON"):
        source.decode(records[1].payload)
    with pytest.raises(ParseError, match=r"line 4: a JSON list where an object"):
        source.decode(records[2].payload)
    last = source.decode(records[3].payload)["ticket"]
    assert last["created_at"] == datetime(2024, 3, 1, 13, 5, tzinfo=UTC)  # Paris in winter: UTC+1


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
def test_a_byte_order_mark_is_no_part_of_the_first_column(tmp_path: Path, encoding: str) -> None:
    write_csv(tmp_path / "tickets.csv", [HEADER, ["1", "Excel", "saved as CSV UTF-8", "new"]], bom=True)
    (record,) = fetch_all(connector(tmp_path, encoding=encoding))
    assert record.external_id == "1"
    assert connector(tmp_path).decode(record.payload)["ticket"]["id"] == "1"


def test_undecodable_bytes_keep_the_row_whole_and_a_replay_with_the_right_encoding_reads_it(tmp_path: Path) -> None:
    header = ",".join(HEADER).encode() + b"\r\n"
    (tmp_path / "tickets.csv").write_bytes(header + b'0,ok,,new\r\n1,Caf\xe9,"two\r\nlines",new\r\n2,fine,ok,new\r\n')
    source = connector(tmp_path)
    _, first, second = fetch_all(source)
    assert first.external_id == "1" and second.external_id == "2"  # the row after it starts where it should
    entry = json.loads(first.payload)
    assert base64.b64decode(entry["raw_b64"]) == b'1,Caf\xe9,"two\r\nlines",new\r\n'  # the row's bytes, no more
    with pytest.raises(ParseError, match=r"tickets.csv line 3: byte 0xe9 .* not valid utf-8-sig; set `encoding`"):
        source.decode(first.payload)
    assert source.decode(second.payload)["ticket"]["subject"] == "fine"
    replayed = connector(tmp_path, encoding="cp1252").decode(first.payload)  # the dead letter, after the fix
    assert replayed["ticket"] == {"id": "1", "subject": "Café", "description": "two\r\nlines", "status": "new"}


# --- refusals --------------------------------------------------------------------------------------------------


def test_a_row_without_an_id_is_named_by_its_place_and_refused(tmp_path: Path) -> None:
    write_csv(tmp_path / "tickets.csv", [HEADER, ["1", "a", "", "new"], ["  ", "no number", "", "new"]])
    source = connector(tmp_path)
    first, second = fetch_all(source)
    assert second.external_id == "tickets.csv:3"
    source.decode(first.payload)
    with pytest.raises(ParseError, match=r"tickets.csv line 3: no ticket id in the column 'id'"):
        source.decode(second.payload)


def test_a_row_with_more_or_fewer_values_than_the_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    write_csv(path, [HEADER, ["1", "a", "b", "new"]])
    with path.open("ab") as file:
        file.write(b"2,unquoted, comma,x,new\r\n3,short\r\n")
    source = connector(tmp_path)
    _, more, fewer = fetch_all(source)
    assert (more.external_id, fewer.external_id) == ("2", "3")
    with pytest.raises(ParseError, match=r"line 3: 5 values for the 4 columns .* must be in double quotes"):
        source.decode(more.payload)
    with pytest.raises(ParseError, match=r"line 4: 2 values for the 4 columns"):
        source.decode(fewer.payload)


def test_quoting_the_reader_refuses_costs_that_row_only(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_bytes(b'id,subject,description,status\n1,"a"b,c,new\n2,fine,ok,new\n')
    source = connector(tmp_path)
    bad, good = fetch_all(source)
    assert bad.external_id == "tickets.csv:2" and good.external_id == "2"
    with pytest.raises(ParseError, match=r"line 2: not a valid CSV row"):
        source.decode(bad.payload)


def test_a_quote_never_closed_fails_the_file_naming_the_row(tmp_path: Path) -> None:
    (tmp_path / "tickets.csv").write_bytes(b'id,subject\n1,ok\n2,"never closed\n3,lost\n')
    with pytest.raises(CsvFileError, match=r"tickets.csv: the row on line 3 opens a quoted value that is never closed"):
        list(connector(tmp_path).plan_pages(None))


def test_a_header_without_the_id_column_names_the_columns_and_the_delimiter(tmp_path: Path) -> None:
    write_csv(tmp_path / "tickets.csv", [["number", "subject"], ["1", "a"]])
    with pytest.raises(CsvFileError, match=r"has no column 'id' \(its columns: 'number', 'subject'\); set `id_col"):
        list(connector(tmp_path).plan_pages(None))
    assert [r.external_id for r in fetch_all(connector(tmp_path, id_column="number"))] == ["1"]
    write_csv(tmp_path / "tickets.csv", [HEADER, ["1", "a", "b", "new"]], delimiter=";")
    with pytest.raises(CsvFileError, match=r"separated by ';': set `delimiter: ';'`"):
        list(connector(tmp_path).plan_pages(None))
    assert [r.external_id for r in fetch_all(connector(tmp_path, delimiter=";"))] == ["1"]


def test_a_file_changed_since_the_plan_stops_the_run(tmp_path: Path) -> None:
    write_csv(tmp_path / "tickets.csv", [HEADER, *ticket_rows(4)])
    source = connector(tmp_path, page_size=2)
    first, second = source.plan_pages(None)
    source.fetch_page(first)
    write_csv(tmp_path / "tickets.csv", [HEADER, ["9", "re-exported", "", "new"], *ticket_rows(4)])
    with pytest.raises(CsvFileChanged, match="changed while it was being read") as raised:
        source.fetch_page(second)
    assert isinstance(raised.value, OSError)  # a source away: the flow does not retry the page in this run


def test_a_repeated_id_is_imported_from_its_last_row_only(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    write_csv(folder / "a.csv", [HEADER, ["1", "old", "", "new"], ["2", "b", "", "new"], ["1", "older?", "", "new"]])
    write_csv(folder / "b.csv", [HEADER, ["3", "c", "", "new"], ["1", "newest", "", "pending"]])
    source = connector(tmp_path, tickets=folder, page_size=2)
    pages = list(source.plan_pages(None))
    assert [page.get("skip") for page in pages] == [[2], [4], None]
    records = fetch_all(source)
    assert [r.external_id for r in records] == ["2", "3", "1"]
    assert source.decode(records[-1].payload)["ticket"]["subject"] == "newest"


# --- comments --------------------------------------------------------------------------------------------------


def test_comments_go_to_their_tickets_in_file_order(tmp_path: Path) -> None:
    write_csv(tmp_path / "tickets.csv", [HEADER, *ticket_rows(3)])
    write_csv(
        tmp_path / "comments.csv",
        [
            COMMENT_HEADER,
            ["103", "7", "on three, first", "Ann <ann@example.org>", "2024-01-02 10:00", "yes"],
            ["101", "8", "on one\nover two lines", "bob", "2024-01-02T10:00:00+02:00", "No"],
            ["", "9", "on no ticket", "", "", ""],
            ["999", "10", "on a ticket the export lacks", "", "", ""],
            ["103", "", "no id of its own", "", "not a date", ""],
            ["103", "11", "   ", "", "", ""],  # no text: no comment
        ],
    )
    source = connector(tmp_path, comments=tmp_path / "comments.csv", page_size=2, timezone="Europe/Paris")
    decoded = {record.external_id: source.decode(record.payload) for record in fetch_all(source)}
    assert decoded["102"]["comments"] == []
    (one,) = decoded["101"]["comments"]
    assert one == {
        "external_id": "comment/101/8",
        "body": "on one\nover two lines",
        "public": False,
        "author": "bob",
        "created_at": datetime(2024, 1, 2, 8, 0, tzinfo=UTC),
    }
    first, second = decoded["103"]["comments"]
    assert (first["external_id"], first["body"], first["public"]) == ("comment/103/7", "on three, first", True)
    assert first["created_at"] == datetime(2024, 1, 2, 9, 0, tzinfo=UTC)  # naive: in the source's timezone
    assert second["external_id"].startswith("comment/103/sha256:") and second["created_at"] is None
    again = {record.external_id: source.decode(record.payload) for record in fetch_all(source)}
    assert again["103"]["comments"][1]["external_id"] == second["external_id"]  # an identity that stays


def test_a_comment_public_value_that_is_no_yes_or_no_is_refused(tmp_path: Path) -> None:
    write_csv(tmp_path / "tickets.csv", [HEADER, ["1", "a", "", "new"]])
    write_csv(tmp_path / "comments.csv", [COMMENT_HEADER, ["1", "5", "secret note", "", "", "internal"]])
    source = connector(tmp_path, comments=tmp_path / "comments.csv")
    (record,) = fetch_all(source)
    with pytest.raises(ParseError, match=r"comments.csv line 2 \(a comment of ticket 1\): public is 'internal'"):
        source.decode(record.payload)


def test_comment_columns_can_be_renamed(tmp_path: Path) -> None:
    write_csv(tmp_path / "tickets.csv", [HEADER, ["1", "a", "", "new"]])
    write_csv(tmp_path / "notes.csv", [["ticket", "text"], ["1", "renamed"]])
    source = connector(tmp_path, comments=tmp_path / "notes.csv", comment_columns={"ticket": "ticket", "body": "text"})
    (record,) = fetch_all(source)
    (comment,) = source.decode(record.payload)["comments"]
    assert comment["body"] == "renamed" and comment["public"] is True


# --- config ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"delimiter": ";;"}, "the delimiter must be one character"),
        ({"delimiter": '"'}, "cannot be the delimiter"),
        ({"encoding": "klingon"}, "unknown encoding 'klingon'; use a Python codec name"),
        ({"encoding": "utf-16"}, "save the export as UTF-8"),
        ({"timezone": "Mars/Olympus"}, "'Mars/Olympus' is not an IANA time zone"),
        ({"format": "xlsx"}, "'auto', 'csv' or 'jsonl'"),
        ({"comment_columns": {"ticket": "t", "text": "body"}}, "text"),
    ],
)
def test_config_mistakes_say_what_to_do(tmp_path: Path, settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CsvSource.model_validate({"kind": "csv", "name": "legacy", "tickets": "t.csv", **settings})


def test_tab_is_spelt_as_a_word_and_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = parse_config(
        "sources: [{name: legacy, kind: csv, tickets: exports/t.tsv, comments: c.tsv, delimiter: tab}]",
        base_dir=tmp_path,
    )
    (source,) = config.sources
    assert isinstance(source, CsvSource) and source.delimiter == "\t"
    assert (source.tickets, source.comments) == (tmp_path / "exports" / "t.tsv", tmp_path / "c.tsv")


def test_missing_files_are_reported_at_plan_time(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"tickets file or folder .*tickets.csv does not exist; .*`tickets`"):
        connector(tmp_path).plan_pages(None)
    write_csv(tmp_path / "tickets.csv", [HEADER])
    with pytest.raises(FileNotFoundError, match=r"comments file .*nope.csv does not exist; .*`comments`"):
        connector(tmp_path, comments=tmp_path / "nope.csv").plan_pages(None)


# --- through the pipeline --------------------------------------------------------------------------------------


def make_runtime(tmp_path: Path, database_url: str, store: Store, **settings: Any) -> SourceRuntime:
    source = {"name": "legacy", "kind": "csv", "tickets": "tickets.csv", "page_size": 2, **settings}
    config = parse_config(yaml.safe_dump({"database_url": database_url, "sources": [source]}), base_dir=tmp_path)
    return build_runtime(config, config.sources[0], store=store)


def sync(runtime: SourceRuntime) -> BatchReport:
    report = BatchReport()
    try:
        for page in runtime.connector.plan_pages(None):
            page_report, watermark = ingest_page.fn(runtime, TICKETS, page, None)
            assert watermark is None
            report += page_report
    finally:
        runtime.connector.close()
    assert report.fetched == report.created + report.updated + report.unchanged + report.quarantined + (
        report.commented + report.ignored
    )
    return report


def stored(store: Store) -> dict[str, dict[str, Any]]:
    """external id → the ticket row, with its comments' bodies."""
    tickets, refs, comments = TicketRow.__table__, ExternalRefRow.__table__, CommentRow.__table__
    with store.connect() as conn:
        query = select(refs.c.external_id, tickets).join(refs, refs.c.ticket_id == tickets.c.id)
        found = conn.execute(query.where(refs.c.system == "legacy")).mappings()
        rows = {row["external_id"]: dict(row) for row in found}
        for row in rows.values():
            bodies = select(comments.c.body).where(comments.c.ticket_id == row["id"]).order_by(comments.c.id)
            row["comments"] = list(conn.execute(bodies).scalars())
    return rows


def test_a_second_run_updates_the_changed_row_and_leaves_the_others_unchanged(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    header = [*HEADER, "priority", "requester_email", "created_at", "department"]
    rows = [
        [str(n), f"Subject {n}", f"Text {n}\non two lines", "Open", "High", f"u{n}@x.org", f"2024-03-0{n} 14:05", "IT"]
        for n in range(1, 6)
    ]
    write_csv(tmp_path / "tickets.csv", [header, *rows])
    write_csv(tmp_path / "comments.csv", [COMMENT_HEADER, ["2", "1", "first answer", "agent", "2024-03-02 15:00", "1"]])
    settings = {"comments": "comments.csv"}
    first = sync(make_runtime(tmp_path, database_url, store, **settings))
    assert (first.created, first.quarantined) == (5, 0), first.notes
    tickets = stored(store)
    assert tickets["3"]["title"] == "Subject 3" and tickets["3"]["status"] == "in_progress"
    assert tickets["3"]["priority"] == 2 and tickets["3"]["requester"] == "u3@x.org"
    assert tickets["3"]["description"] == "Text 3\non two lines"
    assert tickets["3"]["created_at"].replace(tzinfo=UTC) == datetime(2024, 3, 3, 14, 5, tzinfo=UTC)
    assert tickets["3"]["custom_fields"] == {"legacy_id": "3", "department": "IT"}
    assert tickets["2"]["comments"] == ["first answer"]

    rows[2][3] = "Resolved"  # ticket 3 changed upstream; the others are written again as they were
    write_csv(tmp_path / "tickets.csv", [header, *rows])
    with (tmp_path / "comments.csv").open("a", encoding="utf-8", newline="") as file:  # a new comment on 4
        csv.writer(file).writerow(["4", "2", "a new note", "agent", "", "no"])
    second = sync(make_runtime(tmp_path, database_url, store, **settings))
    assert (second.fetched, second.created, second.updated, second.quarantined) == (5, 0, 1, 0)
    assert second.unchanged == 4  # 1, 2 and 5 as they were; 4's row is the same, with one comment more
    tickets = stored(store)
    assert tickets["3"]["status"] == "resolved" and tickets["3"]["resolved_at"] is not None
    assert tickets["4"]["comments"] == ["a new note"] and tickets["2"]["comments"] == ["first answer"]
    third = sync(make_runtime(tmp_path, database_url, store, **settings))
    assert (third.fetched, third.unchanged) == (5, 5)
    assert stored(store)["2"]["comments"] == ["first answer"]  # a comment is added once


def test_unreadable_rows_become_dead_letters_with_their_reason(tmp_path: Path, database_url: str, store: Store) -> None:
    path = tmp_path / "tickets.csv"
    write_csv(path, [HEADER, ["1", "fine", "", "new"], ["", "no id", "", "new"], ["3", "odd", "", "reopened"]])
    with path.open("ab") as file:
        file.write(b"4,Caf\xe9,,new\r\n")
    report = sync(make_runtime(tmp_path, database_url, store))
    assert (report.created, report.quarantined) == (1, 3)
    with store.connect() as conn:
        letters = {row.external_id: row for row in conn.execute(select(DeadLetterRow.__table__))}
    assert letters["tickets.csv:3"].stage == "parse" and "no ticket id" in letters["tickets.csv:3"].reason
    assert letters["3"].stage == "map" and "'reopened' has no entry in the mapping's value_maps.status" in (
        letters["3"].reason
    )
    assert letters["4"].stage == "parse" and "not valid utf-8-sig" in letters["4"].reason
