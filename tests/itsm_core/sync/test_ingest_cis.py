"""The CI batch pipeline on a real store: land → decode → map → write → relate, with quarantine and replay."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import func, select

from itsm_core.errors import ParseError
from itsm_core.mapping import CIMapping, Mapping, RelationshipSpec
from itsm_core.models import RawRecord
from itsm_core.rules import Rules, RulesConfig
from itsm_core.store.cis import get_ci
from itsm_core.store.quarantine import get_dead_letter, list_dead_letters
from itsm_core.store.tables import InboundRecordRow
from itsm_core.sync.ingest import SourcePipeline, replay_dead_letter
from itsm_core.sync.ingest_cis import CIPipeline, ingest_ci_batch

AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
MAPPING = CIMapping(
    fields={"ci_class": "kind", "name": "name", "status": "state"},
    value_maps={"status": {"up": "active", "down": "retired"}},
    attributes={"runs": "runs"},
    required=["name"],
    relationships=[RelationshipSpec(attribute="runs", rel_type="runs_on", direction="incoming")],
)


def decode(payload: bytes) -> dict:
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise ParseError(f"not JSON: {exc}") from None


def pipeline(mapping: CIMapping = MAPPING) -> CIPipeline:
    return CIPipeline("cmdb", decode, mapping, owns=lambda external_id: external_id.startswith("ci:"))


def record(external_id: str, **fields) -> RawRecord:
    body = {"kind": "server", "name": external_id.upper(), "state": "up", **fields}
    return RawRecord(external_id, json.dumps(body).encode(), "json", AT)


def test_a_batch_counts_every_record_once_quarantines_the_bad_and_relates_the_good(store):
    records = [
        record("ci:app", kind="service", runs=[]),
        record("ci:web", runs=["ci:app", "ci:db"]),  # the database is not known yet
        record("ci:bad", state="exploded"),
        RawRecord("ci:garbage", b"{not json", "json", AT),
    ]
    with store.transaction() as conn:
        report = ingest_ci_batch(conn, pipeline(), records)
        again = ingest_ci_batch(conn, pipeline(), records)
        later = ingest_ci_batch(conn, pipeline(), [record("ci:db")])
        web, app, db = (get_ci(conn, "cmdb", f"ci:{n}") for n in ("web", "app", "db"))
        letters = list_dead_letters(conn)
        outcomes = dict(
            conn.execute(
                select(InboundRecordRow.external_id, InboundRecordRow.outcome).where(InboundRecordRow.source == "cmdb")
            ).all()
        )
    assert (report.fetched, report.created, report.quarantined) == (4, 2, 2)
    assert (again.fetched, again.unchanged, again.created, again.quarantined) == (4, 4, 0, 0)
    assert later.created == 1
    assert sorted((x["external_id"], x["stage"]) for x in letters) == [("ci:bad", "map"), ("ci:garbage", "parse")]
    assert "value_maps.status" in next(x["reason"] for x in letters if x["external_id"] == "ci:bad")
    assert outcomes == {
        "ci:app": "created",
        "ci:web": "created",
        "ci:bad": "quarantined",
        "ci:garbage": "quarantined",
        "ci:db": "created",
    }
    # app and db (landed later) run on web: the edges follow web's `runs`, whenever the other end lands.
    assert web["relationships"] == sorted([(app["id"], "runs_on", web["id"]), (db["id"], "runs_on", web["id"])])


def test_a_ci_dead_letter_replays_through_the_ci_path_once_the_mapping_is_fixed(store):
    tickets = SourcePipeline(
        "cmdb", decode, Mapping(source_type="cmdb", fields={"title": "name"}), Rules(RulesConfig())
    )
    with store.transaction() as conn:
        ingest_ci_batch(conn, pipeline(), [record("ci:bad", state="exploded")])
        (letter,) = list_dead_letters(conn)
        failed = replay_dead_letter(conn, replace(tickets, cis=pipeline()), get_dead_letter(conn, letter["id"]))
        assert failed.outcome == "quarantined" and "value_maps.status" in failed.error
        fixed = CIMapping(**{**MAPPING.model_dump(), "value_maps": {"status": {"up": "active", "*": "maintenance"}}})
        result = replay_dead_letter(conn, replace(tickets, cis=pipeline(fixed)), get_dead_letter(conn, letter["id"]))
        assert result.outcome == "created" and result.ticket_id is None
        assert get_ci(conn, "cmdb", "ci:bad")["status"] == "maintenance"
        assert get_dead_letter(conn, letter["id"])["replayed_at"] is not None
        assert (
            conn.execute(
                select(func.count()).select_from(InboundRecordRow).where(InboundRecordRow.outcome == "created")
            ).scalar_one()
            == 1
        )
