"""`OdataBackend` against the Solman simulator: what it creates, notes and transitions is read back before it
counts, so SAP's silent successes are caught; statuses are reached only as the profile says."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from connectors.solman._odata import ODataService
from connectors.solman.backend import OdataBackend
from connectors.solman.profile import load_profile
from itsm_core.errors import UpstreamRejected
from itsm_core.models import TicketStatus
from simulators.solman.simulator import CREATE, MYMESSAGE, SolmanSimulator


@pytest.fixture
def sim() -> Iterator[SolmanSimulator]:
    with SolmanSimulator() as sim:
        yield sim


@pytest.fixture
def backend(sim) -> Iterator[OdataBackend]:
    with httpx.Client(auth=(sim.user, sim.password), timeout=10) as http:
        services = [
            ODataService(http, sim.url(name), system="solman-sim", sap_client="100") for name in (CREATE, MYMESSAGE)
        ]
        yield OdataBackend(*services, load_profile("solman_smin"))


def test_a_long_title_is_cut_to_the_short_text_and_kept_whole_in_the_long_text(sim, backend):
    title = "Outlook asks for the password again and again since the upgrade"
    incident = backend.create(title, "Seen on 12 laptops.", priority="2")
    stored = sim.documents[incident.guid]
    assert len(stored.description) <= 40 and stored.description.endswith("…")
    assert stored.long_text == f"{title}\n\nSeen on 12 laptops."
    assert (incident.status, incident.canonical, incident.priority) == ("E0001", TicketStatus.NEW, "2")


def test_a_create_that_answers_201_and_persists_nothing_is_reported(sim, backend):
    sim.fail_next("silent", path="IncidentSet")
    with pytest.raises(UpstreamRejected, match=r"answered success .* but did not apply it"):
        backend.create("VPN", "down", priority="3")
    assert sim.documents == {}


def test_a_note_is_read_back_and_a_silent_one_reported(sim, backend):
    guid = sim.add_incident("Printer")
    backend.add_note(guid, "Toner replaced")
    assert [n.text for n in backend.read(guid).notes] == ["Toner replaced"]
    sim.fail_next("silent", path="TextSet")
    with pytest.raises(UpstreamRejected, match="the note is not among the incident's texts"):
        backend.add_note(guid, "Drum replaced")


def test_statuses_are_reached_as_the_profile_says_and_checked(sim, backend):
    guid = sim.add_incident("Screen")
    with pytest.raises(UpstreamRejected, match=r"transitions\.resolved\.odata"):
        backend.transition(guid, TicketStatus.RESOLVED)
    with pytest.raises(UpstreamRejected, match="E0008 cannot be set"):  # SAP's own refusal, inside a 200
        backend.transition(guid, TicketStatus.CLOSED)
    sim.set_status(guid, "E0005")
    backend.transition(guid, TicketStatus.CLOSED, "works now")
    assert sim.documents[guid].status == "E0008"
    other = sim.add_incident("Keyboard")
    sim.fail_next("silent", path="withdrawIncident")
    with pytest.raises(UpstreamRejected, match="the incident is new, not cancelled"):
        backend.transition(other, TicketStatus.CANCELLED)
    backend.transition(other, TicketStatus.CANCELLED)
    assert backend.read(other).canonical == TicketStatus.CANCELLED


def test_list_changed_keeps_what_changed_at_or_after_the_moment(sim, backend):
    old = sim.add_incident("Old one")
    time.sleep(0.01)
    since = datetime.now(UTC)
    time.sleep(0.01)
    new = sim.add_incident("New one")
    assert [i.guid for i in backend.list_changed(since)] == [new]
    sim.set_status(old, "E0002")
    assert sorted(i.guid for i in backend.list_changed(since)) == sorted([old, new])
    assert len(list(backend.list_changed(None))) == 2
