"""`IctBackend` against the Solman simulator's ICT endpoint over real HTTP: the poll, creation that a resend cannot
double, notes and statuses read back before they count, and statuses reached only as the profile says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.solman._ict import IctService, system_guid
from connectors.solman.backend import IctBackend
from connectors.solman.profile import load_profile
from itsm_core.errors import UpstreamRejected
from itsm_core.models import TicketStatus
from simulators.solman.simulator import ICT, SolmanSimulator

HUB = system_guid("solman-sim")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock) -> Iterator[SolmanSimulator]:
    with SolmanSimulator(clock=clock, ict_zone="Europe/Berlin") as sim:
        sim.forward_to = HUB
        yield sim


@pytest.fixture
def backend(sim) -> Iterator[IctBackend]:
    with httpx.Client(auth=(sim.user, sim.password), timeout=10) as http:
        service = IctService(http, sim.url(ICT), system="solman-sim", lock_backoff_seconds=0.01)
        profile = load_profile("solman_smin").model_copy(
            update={
                "timezones": load_profile("solman_smin").timezones.model_copy(
                    update={"ict_timestamps": "Europe/Berlin"}
                )
            }
        )
        yield IctBackend(service, profile, HUB)


def test_the_poll_lists_the_open_incidents_exchanged_with_the_hub_and_reads_each(sim, backend, clock):
    first = sim.add_incident("Printer jammed", text="Paper jam on floor 2")
    clock.now += timedelta(minutes=5)
    second = sim.add_incident("VPN down")
    sim.forward_to = None
    sim.add_incident("Not for the hub")
    found = {incident.guid: incident for incident in backend.list_changed(None)}
    assert set(found) == {first, second}
    printer = found[first]
    assert (printer.description, printer.status, printer.canonical) == ("Printer jammed", "E0001", TicketStatus.NEW)
    assert printer.changed_at == datetime(2026, 12, 6, 9, 0, tzinfo=UTC)  # read in the profile's zone, kept in UTC
    assert [(note.text_type, note.text) for note in printer.notes] == [("SU99", "Paper jam on floor 2")]
    assert [i.guid for i in backend.list_changed(datetime(2026, 12, 6, 9, 5, tzinfo=UTC))] == [second]


def test_an_incident_closed_in_solman_is_seen_once_more_through_also(sim, backend):
    guid = sim.add_incident("Printer jammed")
    sim.set_status(guid, "E0010")
    assert list(backend.list_changed(None)) == []
    (closed,) = backend.list_changed(None, also=[guid])
    assert closed.canonical == TicketStatus.CANCELLED


def test_create_hands_over_once_even_when_sent_again(sim, backend):
    title = "Outlook asks for the password again and again since the upgrade"
    incident = backend.create(title, "Seen on 12 laptops.", priority="2", key="ticket-41")
    again = backend.create(title, "Seen on 12 laptops.", priority="2", key="ticket-41")
    assert again.guid == incident.guid and len(sim.documents) == 1
    stored = sim.documents[incident.guid]
    assert len(stored.description) <= 40 and stored.description.endswith("…")
    assert stored.texts[0].text == f"{title}\n\nSeen on 12 laptops."
    assert stored.partner == HUB and incident.object_id == stored.object_id


def test_a_note_is_added_and_read_back(sim, backend):
    guid = sim.add_incident("Printer jammed")
    backend.add_note(guid, "Did you try another tray?\n" + "x" * 200)
    assert "".join(sim.documents[guid].texts[-1].text.split()) == "Didyoutryanothertray?" + "x" * 200


def test_a_note_sap_answers_for_but_does_not_keep_is_reported(sim, backend):
    guid = sim.add_incident("Printer jammed")
    sim.fail_next("silent", path="AddInfo")
    with pytest.raises(UpstreamRejected, match="did not apply it"):
        backend.add_note(guid, "Hello")


def test_statuses_are_reached_by_e_code_or_by_operation_as_the_profile_says(sim, backend):
    guid = sim.add_incident("Printer jammed")
    backend.transition(guid, TicketStatus.IN_PROGRESS)
    assert sim.documents[guid].status == "E0002"
    backend.transition(guid, TicketStatus.RESOLVED, "Replaced the roller")
    assert sim.documents[guid].status == "E0005" and sim.documents[guid].texts[-1].text == "Replaced the roller"
    backend.transition(guid, TicketStatus.CLOSED)  # VerifyIncidentSolution
    assert sim.documents[guid].status == "E0008"


def test_a_status_the_profile_gives_no_way_to_is_refused_with_the_key_to_add(sim, backend):
    guid = sim.add_incident("Printer jammed")
    with pytest.raises(UpstreamRejected, match=r"transitions\.assigned\.ict"):
        backend.transition(guid, TicketStatus.ASSIGNED)


def test_an_operation_solman_refuses_carries_its_reason(sim, backend):
    guid = sim.add_incident("Printer jammed")
    with pytest.raises(UpstreamRejected, match="VerifyIncidentSolution is not possible: the incident is New"):
        backend.transition(guid, TicketStatus.CLOSED)


def test_a_locked_incident_is_written_once_the_lock_is_gone(sim, backend):
    guid = sim.add_incident("Printer jammed")
    sim.fail_next("lock", path="AddInfo", times=2)
    backend.transition(guid, TicketStatus.IN_PROGRESS)
    assert sim.documents[guid].status == "E0002"
