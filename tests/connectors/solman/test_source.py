"""`kind: solman` in the hub: what the conformance suite does not say — a closure in Solman reaches the hub although
ICT lists only open incidents, an E-code the profile lacks is quarantined naming it, config mistakes name their key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.registry import registered_kinds
from connectors.solman.profile import load_profile
from connectors.solman.source import decode_incident
from itsm_core.config import parse_config
from itsm_core.errors import ConfigError, ParseError
from itsm_core.store.tables import CommentRow, TicketRow
from tests.connectors.conformance.conftest import Hub, _hub

tickets = TicketRow.__table__


@pytest.fixture(params=[None, "odata", "odata-delta"])
def hub(request, tmp_path: Path) -> Iterator[Hub]:
    yield from _hub((registered_kinds()["solman"], request.param), tmp_path)


def _statuses(hub: Hub) -> dict[str, str]:
    with hub.store.connect() as conn:
        return {row.title: row.status for row in conn.execute(tickets.select())}


def test_an_incident_closed_in_solman_is_closed_in_the_hub(hub):
    hub.testbed.add_tickets(3)
    hub.sync()
    sim = hub.testbed.sim
    first, second = sorted(sim.documents.values(), key=lambda d: d.object_id)[:2]
    sim.set_status(first.guid, "E0010")  # withdrawn: ICT's list of unclosed incidents no longer has it
    sim.set_status(second.guid, "E0003")
    report = hub.sync()["tickets"]
    assert report.updated == 2, report.counts()
    statuses = _statuses(hub)
    assert statuses[first.description] == "cancelled" and statuses[second.description] == "pending"
    assert hub.sync()["tickets"].updated == 0  # read once more, then no longer (the hub holds it closed)


def test_a_note_written_in_solman_becomes_one_comment(hub):
    hub.testbed.add_tickets(1)
    hub.sync()
    (document,) = hub.testbed.sim.documents.values()
    hub.testbed.sim.add_text(document.guid, "Which tray?")
    hub.sync()
    hub.sync()
    with hub.store.connect() as conn:
        bodies = [row.body for row in conn.execute(CommentRow.__table__.select())]
    assert bodies == ["Which tray?"]


def test_a_code_the_profile_does_not_map_is_named_in_the_quarantine_reason():
    payload = b'{"guid": "A", "process_type": "SMIN", "status": "E0042", "notes": []}'
    with pytest.raises(ParseError, match=r"E0042 of process type SMIN .* status_map\.SMIN"):
        decode_incident(payload, load_profile("solman_smin"))


def test_a_profile_that_cannot_be_loaded_names_the_sources_key(tmp_path):
    text = (
        "sources:\n  - {name: sap, kind: solman, url: 'https://sap.example.com', user: HUB, password: x, "
        "profile: no_such_profile}\n"
    )
    with pytest.raises(ConfigError, match=r"sources\[0\]\.profile|sources.0.profile") as caught:
        parse_config(text, base_dir=tmp_path)
    assert "no_such_profile" in str(caught.value)


def test_a_url_with_a_path_is_refused_with_what_to_write(tmp_path):
    text = "sources:\n  - {name: sap, kind: solman, url: 'https://sap.example.com/sap/bc', user: HUB, password: x}\n"
    with pytest.raises(ConfigError, match="origin only"):
        parse_config(text, base_dir=tmp_path)
