"""Both ways with the Solman simulator over HTTP (ICT, then OData): an incident from Solman gets the hub's rules, a
status and a note from the hub reach Solman, a note from Solman reaches the hub, and nothing comes back."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import mappings
from connectors.solman.backend import File
from connectors.solman.source import SolmanConnector
from itsm_core.errors import UpstreamRejected
from itsm_core.store.outbox import depth
from simulators.solman.simulator import SolmanSimulator
from tests.support.solman import SolmanHub


@pytest.fixture
def sim():
    with SolmanSimulator() as sim:
        yield sim


@pytest.mark.parametrize("backend", ["ict", "odata"])
def test_changes_on_either_side_reach_the_other_once_and_nothing_bounces(sim, database_url, tmp_path, backend):
    hub = SolmanHub.start(sim, database_url, tmp_path, backend=backend)
    guid = sim.add_incident("SAP GUI dumps on VA01", priority="2", text="ST22 shows a short dump since 9:00")
    hub.sync()
    ticket = hub.ticket(guid)
    assert (ticket["title"], ticket["description"], ticket["status"]) == (
        "SAP GUI dumps on VA01", "ST22 shows a short dump since 9:00", "new",
    )  # fmt: skip
    assert ticket["priority"] == 2 and ticket["custom_fields"]["solman_id"] == sim.documents[guid].object_id

    # A note from the hub becomes one text in Solman, and is not brought back as a new comment.
    hub.change(guid, comment="We are looking at the dump.")
    assert hub.push().sent == 1
    assert "We are looking at the dump." in sim.documents[guid].texts[-1].text
    hub.sync()
    assert hub.comments(guid) == ["We are looking at the dump."]

    # A text written in Solman becomes one comment in the hub, not pushed back.
    sim.add_text(guid, "It happens on every sales order.")
    hub.sync()
    assert hub.comments(guid)[-1] == "It happens on every sales order."
    assert hub.push().sent == 0

    # The hub resolves it: ICT sets the mapped E-code; OData cannot (the Fiori services only confirm or
    # withdraw), so Solman keeps its status there and the hub is not pulled back by it.
    sim.set_status(guid, "E0002")
    hub.sync()
    hub.change(guid, status="resolved")
    hub.push()
    expected = "E0005" if backend == "ict" else "E0002"
    assert sim.documents[guid].status == expected
    echo = hub.sync()  # Solman's change date moved: read once, the status is the hub's own
    assert echo.created == echo.quarantined == 0 and hub.ticket(guid)["status"] == "resolved"

    # Five more cycles: nothing moves on either side.
    texts_before = list(sim.documents[guid].texts)
    for _ in range(5):
        pulled, pushed = hub.sync(), hub.push()
        assert pulled.created == pulled.updated == pulled.quarantined == 0, pulled.counts()
        assert pushed.handled == 0
    assert sim.documents[guid].texts == texts_before and sim.documents[guid].status == expected
    assert hub.ticket(guid)["status"] == "resolved"
    with hub.store.connect() as conn:
        assert depth(conn) == 0


def test_confirmed_in_solman_closes_the_hubs_ticket(sim, database_url, tmp_path):
    hub = SolmanHub.start(sim, database_url, tmp_path)
    guid = sim.add_incident("Printer jammed")
    hub.sync()
    sim.set_status(guid, "E0005")
    hub.sync()
    assert hub.ticket(guid)["status"] == "resolved"
    sim.set_status(guid, "E0008")  # confirmed: ICT no longer lists it, the hub reads it once more
    hub.sync()
    assert hub.ticket(guid)["status"] == "closed"


def test_a_system_that_keeps_its_texts_in_html_gets_html_and_gives_text(sim, database_url, tmp_path):
    bundled = yaml.safe_load((Path(mappings.__file__).parent / "solman_smin.yaml").read_text())
    profile = tmp_path / "html_profile.yaml"
    profile.write_text(yaml.safe_dump({**bundled, "text_format": "html"}))
    hub = SolmanHub.start(sim, database_url, tmp_path, profile=str(profile))
    guid = sim.add_incident("Printer jammed", text="<p>Tray 2 &amp; tray 3 <b>jam</b></p>")
    hub.sync()
    assert hub.ticket(guid)["description"] == "Tray 2 & tray 3 jam"

    hub.change(guid, comment="Use tray 1 < 2 for now")
    assert hub.push().sent == 1
    assert sim.documents[guid].texts[-1].text == (
        "<p><em>ops@example.org wrote:</em></p><p>Use tray 1 &lt; 2 for now</p>"
    )
    sim.add_text(guid, "<p>Works <i>again</i></p>")
    hub.sync()
    assert hub.comments(guid) == ["Use tray 1 < 2 for now", "Works again"]
    assert hub.push().sent == 0


@pytest.mark.parametrize("backend", ["ict", "odata"])
def test_files_attached_in_solman_become_attachments_and_the_backend_attaches_and_checks(
    sim, database_url, tmp_path, backend
):
    hub = SolmanHub.start(sim, database_url, tmp_path, backend=backend)
    guid = sim.add_incident("Printer jammed")
    sim.add_attachment(guid, "error log.txt", b"E42 paper path\n", "text/plain")
    sim.add_attachment(guid, "dump.bin", b"x" * 30_000_000, "application/octet-stream")  # over the 20 MiB limit
    hub.sync()
    ticket = hub.ticket(guid)
    assert (
        "[file dump.bin (30000000 bytes) left out: over the profile's limits.max_attachment_bytes"
        in (ticket["description"])
    )
    assert [(a.name, a.content) for a in hub.attachments(guid)] == [("error log.txt", b"E42 paper path\n")]

    connector = SolmanConnector(hub.config.source("sap"))
    try:
        connector.backend.attach(guid, File("screenshot ü.png", "image/png", b"\x89PNG..."))
        assert sim.documents[guid].attachments[-1].data == b"\x89PNG..."
        sim.fail_next("silent", path="AttachmentSet|AddInfo")
        with pytest.raises(UpstreamRejected, match="not among the incident's attachments"):
            connector.backend.attach(guid, File("again.png", "image/png", b"\x89PNG"))
    finally:
        connector.close()
