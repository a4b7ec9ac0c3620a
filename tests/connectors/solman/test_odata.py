"""OData v2 on SAP Gateway (`connectors/solman/_odata.py`): literals, the `d` wrapper, CSRF, paging guards, SAP's
ways of failing inside a 200, errors in JSON and XML, document locks. respx, one case per trap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
import respx

from connectors.solman._odata import (
    ODataService,
    datetime_literal,
    guid_compact,
    guid_literal,
    parse_datetime,
    sap_error,
    string_literal,
    unwrap,
)
from itsm_core.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)

SERVICE = "https://solman.example.com/sap/opu/odata/sap/AI_CRM_GW_MYMESSAGE_SRV"
GUID = "0050568F-0D1A-1EDB-A1B2-C3D4E5F60718"


@pytest.fixture
def router():
    with respx.mock(base_url=SERVICE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def service(slept):
    with httpx.Client() as http:
        yield ODataService(http, SERVICE, system="solman-prod", sap_client="100", lock_backoff_seconds=1.0,
                           sleep=slept.append)  # fmt: skip


def d(payload):
    return {"d": payload}


def csrf(router, token: str = "tok-1"):
    return router.get("/").mock(
        return_value=httpx.Response(200, headers={"x-csrf-token": token, "set-cookie": "SAP_SESSIONID_SM1_100=abc"})
    )


# --- literals and the wrapper -------------------------------------------------------------------------------------


def test_dates_from_json_and_iso_and_into_uri_literals():
    assert parse_datetime("/Date(1764979200000)/") == datetime(2025, 12, 6, tzinfo=UTC)
    assert parse_datetime("/Date(1764979200000+0060)/") == datetime(2025, 12, 5, 23, 0, tzinfo=UTC)
    assert parse_datetime("2026-12-06T09:30:00") == datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    assert parse_datetime("2026-12-06T09:30:00Z") == datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    assert parse_datetime(None) is None and parse_datetime("") is None
    with pytest.raises(ValueError):
        parse_datetime("yesterday")
    paris = timezone(timedelta(hours=1))
    assert datetime_literal(datetime(2026, 12, 6, 10, 30, tzinfo=paris)) == "datetime'2026-12-06T09:30:00'"
    with pytest.raises(ValueError, match="aware"):
        datetime_literal(datetime(2026, 12, 6, 10, 30))


def test_guids_both_ways_and_strings_quoted():
    compact = GUID.replace("-", "")
    assert guid_compact(GUID.lower()) == compact and guid_compact(compact.lower()) == compact
    assert guid_literal(compact) == f"guid'{GUID.lower()}'"
    with pytest.raises(ValueError):
        guid_compact("8000141797")
    assert string_literal("O'Brien") == "'O''Brien'"


def test_the_d_wrapper_of_entities_and_collections():
    assert unwrap({"d": {"results": [{"Id": 1}]}}) == [{"Id": 1}]
    assert unwrap({"d": {"Id": 1}}) == {"Id": 1}
    with pytest.raises(ValueError, match="'d' wrapper"):
        unwrap({"value": []})


# --- reads ----------------------------------------------------------------------------------------------------------


def test_every_read_names_the_client_and_language_and_asks_for_json(router, service):
    route = router.get("/IncidentSet").mock(return_value=httpx.Response(200, json=d({"results": []})))
    assert service.get("IncidentSet") == []
    params = route.calls.last.request.url.params
    assert (params["sap-client"], params["sap-language"], params["$format"]) == ("100", "EN", "json")


def test_an_html_login_page_instead_of_json_is_an_authentication_failure(router, service):
    router.get("/IncidentSet").mock(
        return_value=httpx.Response(
            200, text="<html><form>SAML login</form></html>", headers={"content-type": "text/html"}
        )
    )
    with pytest.raises(UpstreamAuthError, match="HTML page") as caught:
        service.get("IncidentSet")
    assert "solman.example.com" not in str(caught.value)  # the source's name, never its URL


def test_paging_follows_next_links(router, service):
    pages = [
        httpx.Response(
            200, json=d({"results": [{"Id": 1}, {"Id": 2}], "__next": f"{SERVICE}/IncidentSet?$skiptoken=2"})
        ),
        httpx.Response(200, json=d({"results": [{"Id": 3}]})),
    ]
    route = router.get("/IncidentSet").mock(side_effect=pages)
    assert [row["Id"] for row in service.iter_collection("IncidentSet", top=2)] == [1, 2, 3]
    assert route.calls.last.request.url.params["$skiptoken"] == "2"


def test_paging_by_skip_stops_on_a_short_page(router, service):
    def page(request: httpx.Request) -> httpx.Response:
        skip, top = int(request.url.params["$skip"]), int(request.url.params["$top"])
        return httpx.Response(200, json=d({"results": [{"Id": i} for i in range(skip, min(skip + top, 5))]}))

    route = router.get("/IncidentSet").mock(side_effect=page)
    assert [row["Id"] for row in service.iter_collection("IncidentSet", top=2)] == [0, 1, 2, 3, 4]
    assert route.call_count == 3


def test_a_service_that_ignores_skip_is_caught_at_the_repeated_page(router, service):
    router.get("/IncidentSet").mock(return_value=httpx.Response(200, json=d({"results": [{"Id": 1}, {"Id": 2}]})))
    read = []
    with pytest.raises(UpstreamError, match="ignores \\$skip"):
        for row in service.iter_collection("IncidentSet", top=2):
            read.append(row["Id"])
    assert read == [1, 2]  # nothing duplicated


# --- writes ------------------------------------------------------------------------------------------------------


def test_writes_fetch_a_csrf_token_once_and_send_it_with_the_session_cookie(router, service):
    fetch = csrf(router)
    create = router.post("/IncidentSet").mock(return_value=httpx.Response(201, json=d({"Guid": GUID})))
    assert service.post("IncidentSet", {"Description": "VPN down"}) == {"Guid": GUID}
    service.post("IncidentSet", {"Description": "again"})
    assert fetch.call_count == 1
    assert fetch.calls.last.request.headers["x-csrf-token"] == "Fetch"
    sent = create.calls.last.request
    assert sent.headers["x-csrf-token"] == "tok-1" and "SAP_SESSIONID_SM1_100=abc" in sent.headers["cookie"]


def test_an_expired_csrf_token_is_fetched_again_once(router, service):
    fetch = router.get("/").mock(side_effect=[httpx.Response(200, headers={"x-csrf-token": t}) for t in ("old", "new")])
    required = httpx.Response(403, headers={"x-csrf-token": "Required"}, text="CSRF token validation failed")
    create = router.post("/IncidentSet").mock(side_effect=[required, httpx.Response(201, json=d({"Guid": GUID}))])
    assert service.post("IncidentSet", {}) == {"Guid": GUID}
    assert fetch.call_count == 2 and create.calls.last.request.headers["x-csrf-token"] == "new"


def test_a_csrf_token_refused_twice_is_a_permission_error(router, service):
    router.get("/").mock(return_value=httpx.Response(200, headers={"x-csrf-token": "tok"}))
    router.post("/IncidentSet").mock(return_value=httpx.Response(403, headers={"x-csrf-token": "Required"}))
    with pytest.raises(UpstreamForbidden):
        service.post("IncidentSet", {})


def test_a_function_import_that_failed_inside_a_200_is_a_rejection_with_saps_message(router, service):
    csrf(router)
    body = d({"results": [{"Type": "S", "Message": "ok"}, {"Type": "E", "Message": "Status E0008 not allowed"}]})
    router.post("/SetStatus").mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(UpstreamRejected, match="Status E0008 not allowed") as caught:
        service.call("SetStatus", {"Guid": guid_literal(GUID), "Status": "'E0008'"})
    assert caught.value.detail == "Status E0008 not allowed"


def test_a_locked_document_is_retried_with_backoff(router, service, slept):
    csrf(router)
    locked = httpx.Response(
        400,
        json={"error": {"code": "CRM_ORDER/013", "message": {"value": "8000141797 is being processed by user ANNA"}}},
    )
    merge = router.route(method="MERGE", path__regex=r"/IncidentSet.*").mock(
        side_effect=[locked, locked, httpx.Response(204)]
    )
    service.merge(f"IncidentSet({guid_literal(GUID)})", {"Priority": "2"})
    assert merge.call_count == 3 and slept == [1.0, 2.0]


def test_a_lock_that_outlasts_the_retries_is_reported_with_saps_code(router, service, slept):
    csrf(router)
    locked = httpx.Response(400, json={"error": {"code": "CRM_ORDER/013", "message": {"value": "being processed"}}})
    router.route(method="MERGE", path__regex=r"/IncidentSet.*").mock(return_value=locked)
    with pytest.raises(UpstreamRejected) as caught:
        service.merge(f"IncidentSet({guid_literal(GUID)})", {"Priority": "2"})
    assert caught.value.code == "CRM_ORDER/013" and len(slept) == 4


# --- errors ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, UpstreamAuthError), (403, UpstreamForbidden), (404, UpstreamNotFound), (400, UpstreamRejected),
     (500, UpstreamUnavailable), (503, UpstreamUnavailable)],
)  # fmt: skip
def test_statuses_become_the_hubs_errors_with_saps_code_and_message(router, service, status, kind):
    error = {"error": {"code": "SY/530", "message": {"lang": "en", "value": "Something SAP said"}}}
    router.get("/IncidentSet").mock(return_value=httpx.Response(status, json=error))
    with pytest.raises(kind) as caught:
        service.get("IncidentSet")
    assert (caught.value.code, caught.value.detail, caught.value.status) == ("SY/530", "Something SAP said", status)
    assert "solman-prod" in str(caught.value)


def test_error_bodies_in_xml_are_read_too():
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><error xmlns="http://schemas.microsoft.com/ado/2007/08/dataservices/'
        'metadata"><code>/IWFND/CM_COS/221</code><message xml:lang="en">Virus scan profile is not active</message>'
        "</error>"
    )
    assert sap_error(httpx.Response(500, text=xml)) == ("/IWFND/CM_COS/221", "Virus scan profile is not active")
    assert sap_error(httpx.Response(500, text="Internal Server Error")) == (None, None)


def test_a_network_failure_on_a_write_says_it_may_have_been_applied(router, service):
    csrf(router)
    router.post("/IncidentSet").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(UpstreamUnavailable) as caught:
        service.post("IncidentSet", {})
    assert caught.value.maybe_applied is True
