"""The OData mechanics (`connectors/solman/_odata.py`) against the Solman simulator over real HTTP: create, read,
note, confirm, and each quirk SAP Gateway shows integrators (CSRF expiry, locks, HTML login, Type E, ignored $skip,
writes that answer success and do nothing)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connectors.solman._odata import ODataService, guid_compact, guid_literal, parse_datetime, string_literal
from itsm_core.errors import UpstreamAuthError, UpstreamError, UpstreamRejected
from simulators.solman.simulator import CREATE, MYMESSAGE, SolmanSimulator


@pytest.fixture
def sim() -> Iterator[SolmanSimulator]:
    with SolmanSimulator() as sim:
        yield sim


@pytest.fixture
def http(sim) -> Iterator[httpx.Client]:
    with httpx.Client(auth=(sim.user, sim.password), timeout=10) as client:
        yield client


@pytest.fixture
def slept() -> list[float]:
    return []


def service(sim, http, name: str, slept: list[float] | None = None) -> ODataService:
    return ODataService(http, sim.url(name), system="solman-sim", sap_client=sim.sap_client,
                        sleep=(slept if slept is not None else []).append)  # fmt: skip


def test_an_incident_created_read_noted_and_confirmed(sim, http):
    created = service(sim, http, CREATE).post(
        "IncidentSet", {"ProcessType": "SMIN", "Description": "VPN drops every hour on the Lyon site", "Priority": "2"}
    )
    guid = guid_compact(created["Guid"])
    messages = service(sim, http, MYMESSAGE)
    key = f"MessageResultSet({guid_literal(guid)})"
    read = messages.get(key)
    assert (read["ObjectId"], read["UserStatus"], read["Priority"]) == (created["ObjectId"], "E0001", "2")
    assert parse_datetime(read["ChangedAtDate"]) is not None
    messages.post(f"{key}/TextSet", {"TextString": "Rebooted the concentrator; watching."})
    assert [t["TextString"] for t in messages.get(f"{key}/TextSet")] == ["Rebooted the concentrator; watching."]
    sim.set_status(guid, "E0005")  # a processor proposes a solution in Solman
    messages.call("confirmIncident", {"Guid": guid_literal(guid), "Comments": string_literal("Works, thanks")})
    assert messages.get(key)["UserStatus"] == "E0008"
    assert [m["ObjectId"] for m in messages.iter_collection("MessageResultSet")] == [created["ObjectId"]]


def test_a_csrf_token_that_expires_mid_run_is_fetched_again(sim, http):
    guid = sim.add_incident("Printer jam")
    messages = service(sim, http, MYMESSAGE)
    key = f"MessageResultSet({guid_literal(guid)})/TextSet"
    messages.post(key, {"TextString": "first"})
    sim.expire_csrf()
    messages.post(key, {"TextString": "second"})
    assert [t["TextString"] for t in messages.get(key)] == ["first", "second"]
    fetches = [r for r in sim.requests if r[0] == "GET" and r[1].split("?")[0] == f"{MYMESSAGE}/"]
    refused = [r for r in sim.requests if r[2] == 403]
    assert len(fetches) == 2 and len(refused) == 1


def test_a_locked_document_is_written_once_the_lock_is_gone(sim, http, slept):
    guid = sim.add_incident("Mail quota")
    sim.fail_next("lock", path="TextSet", times=2)
    messages = service(sim, http, MYMESSAGE, slept)
    messages.post(f"MessageResultSet({guid_literal(guid)})/TextSet", {"TextString": "raised to 5 GB"})
    assert len(sim.documents[guid].texts) == 1 and len(slept) == 2


def test_a_failure_inside_a_200_is_raised_with_saps_message(sim, http):
    guid = sim.add_incident("Cannot log in")  # status New: nothing to confirm yet
    with pytest.raises(UpstreamRejected, match="E0008 cannot be set: the incident is New"):
        service(sim, http, MYMESSAGE).call("confirmIncident", {"Guid": guid_literal(guid)})
    assert sim.documents[guid].status == "E0001"


def test_an_expired_single_sign_on_is_an_authentication_failure(sim, http):
    sim.fail_next("html_login")
    with pytest.raises(UpstreamAuthError, match="HTML page"):
        service(sim, http, MYMESSAGE).get("MessageResultSet")


def test_a_wrong_password_is_an_authentication_failure_without_the_password(sim):
    with httpx.Client(auth=(sim.user, "wrong-secret-123")) as http, pytest.raises(UpstreamAuthError) as caught:
        service(sim, http, MYMESSAGE).get("MessageResultSet")
    assert caught.value.status == 401 and "wrong-secret-123" not in str(caught.value)


def test_paging_reads_every_incident_once_and_catches_an_ignored_skip(sim, http):
    for n in range(230):
        sim.add_incident(f"Incident {n}")
    messages = service(sim, http, MYMESSAGE)
    ids = [m["ObjectId"] for m in messages.iter_collection("MessageResultSet", top=100)]
    assert len(ids) == len(set(ids)) == 230
    sim.repeat_pages = True
    with pytest.raises(UpstreamError, match="ignores \\$skip"):
        list(messages.iter_collection("MessageResultSet", top=100))


def test_a_write_that_answers_success_and_does_nothing_shows_on_the_re_read(sim, http):
    guid = sim.add_incident("Laptop screen")
    sim.fail_next("silent", path="TextSet")
    messages = service(sim, http, MYMESSAGE)
    key = f"MessageResultSet({guid_literal(guid)})/TextSet"
    messages.post(key, {"TextString": "ordered a new panel"})  # 201, as Gateway answers it
    assert messages.get(key) == []  # only reading it back tells: the backend verifies every write this way
