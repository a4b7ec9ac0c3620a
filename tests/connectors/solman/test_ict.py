"""The ICT SOAP interface (`connectors/solman/_ict.py`): zeep over the source's httpx client, SAP's failures inside a
200 (``Errors`` rows), faults, locks, HTTP statuses, timestamps and text lines. respx, one case per trap."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import respx

from connectors.solman._ict import IctService, parse_timestamp, rows, text_lines, timestamp
from itsm_core.errors import UpstreamAuthError, UpstreamError, UpstreamRejected, UpstreamUnavailable
from simulators.solman.ict import WSDL

ENDPOINT = "https://solman.example.com/sap/bc/srt/rfc/sap/ict_service_desk_api/100/ict_service_desk_api/binding"
GUID = "0050568F0D1A1EDBA1B2C3D4E5F60718"
NS = "urn:sap-com:document:sap:soap:functions:mc-style"


def soap(body: str, status: int = 200) -> httpx.Response:
    envelope = (
        '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>'
        f"{body}</soap-env:Body></soap-env:Envelope>"
    )
    return httpx.Response(status, text=envelope, headers={"content-type": "text/xml; charset=utf-8"})


def answer(operation: str, inner: str = "") -> httpx.Response:
    return soap(f'<n0:{operation}Response xmlns:n0="{NS}">{inner}</n0:{operation}Response>')


def errors(*rows_: tuple[str, str]) -> str:
    items = "".join(f"<item><ErrorCode>{code}</ErrorCode><Val1>{text}</Val1></item>" for code, text in rows_)
    return f"<Errors>{items}</Errors>"


@pytest.fixture
def router():
    with respx.mock(assert_all_called=False) as router:
        router.get(ENDPOINT, params={"wsdl": ""}).mock(return_value=httpx.Response(200, text=WSDL.read_text()))
        yield router


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def service(router, slept):
    with httpx.Client() as http:
        yield IctService(http, ENDPOINT, system="solman-prod", lock_backoff_seconds=1.0, sleep=slept.append)


def test_timestamps_are_read_and_written_in_the_profiles_zone():
    moment = datetime(2026, 12, 6, 8, 30, 5, tzinfo=UTC)
    assert timestamp(moment, "Europe/Berlin") == Decimal("20261206093005")
    assert parse_timestamp(Decimal("20261206093005"), "Europe/Berlin") == moment
    assert parse_timestamp("0", "UTC") is None and parse_timestamp(None, "UTC") is None


def test_texts_become_lines_of_at_most_132_characters_paragraphs_kept():
    lines = text_lines("a" * 300 + "\n\nend")["item"]
    assert [len(line) for line in lines] == [132, 132, 36, 0, 3]


def test_a_call_posts_the_soap_envelope_to_the_endpoint_and_reads_the_tables(router, service):
    route = router.post(ENDPOINT).mock(
        return_value=answer(
            "ListUnclosedIncidents",
            f"<Incidents><item><IncidentGuid>{GUID}</IncidentGuid><Status>RP</Status></item></Incidents>",
        )
    )
    result = service.call("ListUnclosedIncidents", SystemGuid="A" * 32)
    assert [row["IncidentGuid"] for row in rows(result["Incidents"])] == [GUID]
    sent = route.calls.last.request
    assert b"ListUnclosedIncidents" in sent.content and b"A" * 32 in sent.content
    assert "ListUnclosedIncidents" in sent.headers["SOAPAction"]


def test_errors_inside_a_200_are_a_rejection_with_saps_words(router, service):
    router.post(ENDPOINT).mock(return_value=answer("AddInfo", errors(("CRM_ORDER/030", "Status E0009 not allowed"))))
    with pytest.raises(UpstreamRejected, match="CRM_ORDER/030 Status E0009 not allowed") as caught:
        service.call("AddInfo", IctHead={"IncidentGuid": GUID})
    assert caught.value.code == "CRM_ORDER/030"


def test_a_locked_document_is_retried_with_backoff(router, service, slept):
    route = router.post(ENDPOINT).mock(
        side_effect=[answer("AddInfo", errors(("CRM_ORDER/013", "locked by PROCESSOR1")))] * 2 + [answer("AddInfo")]
    )
    service.call("AddInfo", IctHead={"IncidentGuid": GUID})
    assert route.call_count == 3 and slept == [1.0, 2.0]


def test_a_lock_that_outlasts_the_retries_is_reported(router, service, slept):
    router.post(ENDPOINT).mock(return_value=answer("AddInfo", errors(("CRM_ORDER/013", "locked by PROCESSOR1"))))
    with pytest.raises(UpstreamRejected, match="CRM_ORDER/013"):
        service.call("AddInfo", IctHead={"IncidentGuid": GUID})
    assert len(slept) == 4


def test_a_soap_fault_is_a_rejection_with_its_text(router, service):
    fault = (
        "<soap-env:Fault><faultcode>soap-env:Client</faultcode><faultstring>Bad request</faultstring></soap-env:Fault>"
    )
    router.post(ENDPOINT).mock(return_value=soap(fault, 500))
    with pytest.raises(UpstreamRejected, match="refused ICT CloseIncident: Bad request"):
        service.call("CloseIncident", IctHead={"IncidentGuid": GUID})


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(401, text="Logon failed"), UpstreamAuthError),
        (
            httpx.Response(200, text="<html><form>login</form></html>", headers={"content-type": "text/html"}),
            UpstreamAuthError,
        ),
        (httpx.Response(503, text="Service unavailable"), UpstreamUnavailable),
    ],
)
def test_http_failures_become_the_hubs_errors(router, service, response, kind):
    router.post(ENDPOINT).mock(return_value=response)
    with pytest.raises(kind, match=r"solman-prod: SAP .*ICT ReadCompleteIncident"):
        service.call("ReadCompleteIncident", IncidentGuid=GUID)


def test_no_answer_to_a_write_says_it_may_have_been_applied(router, service):
    router.post(ENDPOINT).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(UpstreamUnavailable) as caught:
        service.call("AddInfo", IctHead={"IncidentGuid": GUID})
    assert caught.value.maybe_applied


def test_an_answer_that_breaks_the_wsdl_is_named(router, service):
    router.post(ENDPOINT).mock(return_value=soap("<nothing/>"))
    with pytest.raises(UpstreamError, match="does not match its WSDL"):
        service.call("ReadCompleteIncident", IncidentGuid=GUID)


def test_a_wsdl_without_an_operation_the_connector_calls_is_named(router):
    trimmed = WSDL.read_text().replace("CloseIncident", "CloseIncidentX")
    router.get(ENDPOINT, params={"wsdl": ""}).mock(return_value=httpx.Response(200, text=trimmed))
    with httpx.Client() as http:
        service = IctService(http, ENDPOINT, system="solman-prod")
    assert service.missing_operations() == ["CloseIncident"]
    with pytest.raises(UpstreamRejected, match="has no operation CloseIncident"):
        service.call("CloseIncident")


def test_a_wsdl_that_cannot_be_fetched_is_an_authentication_error_when_refused(router):
    router.get(ENDPOINT, params={"wsdl": ""}).mock(return_value=httpx.Response(401, text="no"))
    with httpx.Client() as http, pytest.raises(UpstreamAuthError, match="ICT WSDL"):
        IctService(http, ENDPOINT, system="solman-prod")
