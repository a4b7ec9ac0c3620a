"""GlpiClient against scripted GLPI answers (respx; no network, no real waits): one behaviour per test."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from connectors.glpi._http import clean_message
from connectors.glpi.client import GlpiClient, WriteResult, criterion, modified_since
from itsm_core.errors import (
    FileTooLarge,
    UpstreamAuthError,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)

BASE = "https://glpi.example.org/glpi/apirest.php"
USER_TOKEN = "ut-SECRET-7f3a9c"
APP_TOKEN = "at-SECRET-41d2e8"
PASSWORD = "pw-SECRET-b6c1"
DOC_TAIL = f"; view documentation in your browser at {BASE}/#"


def glpi_error(status: int, code: str, message: Any, *, doc: bool = True) -> httpx.Response:
    """GLPI's `returnError`: `[code, message]`, with the documentation tail when GLPI adds it."""
    if doc and isinstance(message, str):
        message = f"{message}{DOC_TAIL}{code}"
    return httpx.Response(status, json=[code, message])


def rows(first: int, count: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"ticket {i}"} for i in range(first, first + count)]


def query(request: httpx.Request) -> list[tuple[str, str]]:
    return parse_qsl(request.url.query.decode(), keep_blank_values=True)


@pytest.fixture
def router() -> respx.Router:
    """A GLPI that logs in (token `sess-1`), accepts the active entity and kills sessions; tests add the rest."""
    router = respx.Router(base_url=BASE, assert_all_called=False)
    router.get("/initSession", name="init").respond(200, json={"session_token": "sess-1"})
    router.post("/changeActiveEntities", name="entities").respond(200, json=True)
    router.get("/killSession", name="kill").respond(200, json=True)
    return router


@pytest.fixture
def sleeps() -> list[float]:
    """What the client would have slept, in order (it never really waits in these tests)."""
    return []


@pytest.fixture
def make(router: respx.Router, sleeps: list[float]) -> Callable[..., GlpiClient]:
    clients: list[GlpiClient] = []

    def make(**options: Any) -> GlpiClient:
        settings: dict[str, Any] = {
            "system": "glpi-test",
            "user_token": USER_TOKEN,
            "app_token": APP_TOKEN,
            "transport": httpx.MockTransport(router.handler),
            "sleep": sleeps.append,
            **options,
        }
        if "login" in options:
            settings.pop("user_token")
        client = GlpiClient(BASE, **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make: Callable[..., GlpiClient]) -> GlpiClient:
    return make()


# --- sessions -------------------------------------------------------------------------------------------------


def test_login_sends_user_token_and_app_token_then_uses_the_session_token(router, client):
    ticket = router.get("/Ticket/1").respond(200, json={"id": 1})

    assert client.get_item("Ticket", 1) == {"id": 1}

    login = router["init"].calls.last.request
    assert login.headers["Authorization"] == f"user_token {USER_TOKEN}"
    assert login.headers["App-Token"] == APP_TOKEN
    read = ticket.calls.last.request
    assert read.headers["Session-Token"] == "sess-1"
    assert read.headers["App-Token"] == APP_TOKEN
    assert "Authorization" not in read.headers
    assert "X-GLPI-Sanitized-Content" not in read.headers  # values come back exactly as GLPI stores them
    assert ("get_hateoas", "false") in query(read)


def test_login_makes_the_root_entity_active_recursively(router, client):
    router.get("/Ticket/1").respond(200, json={"id": 1})

    client.get_item("Ticket", 1)

    entities = router["entities"].calls.last.request
    assert entities.headers["Session-Token"] == "sess-1"
    assert json.loads(entities.content) == {"entities_id": 0, "is_recursive": True}


def test_login_with_credentials_uses_http_basic(router, make):
    router.get("/Ticket/1").respond(200, json={"id": 1})
    client = make(login="itsm-hub", password=PASSWORD)

    client.get_item("Ticket", 1)

    expected = base64.b64encode(f"itsm-hub:{PASSWORD}".encode()).decode()
    assert router["init"].calls.last.request.headers["Authorization"] == f"Basic {expected}"


def test_an_expired_session_is_reopened_once_and_the_request_replayed(router, client):
    router["init"].side_effect = [
        httpx.Response(200, json={"session_token": "sess-1"}),
        httpx.Response(200, json={"session_token": "sess-2"}),
    ]
    ticket = router.get("/Ticket/1")
    ticket.side_effect = [
        httpx.Response(200, json={"id": 1}),
        glpi_error(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid", doc=False),
        httpx.Response(200, json={"id": 1}),
    ]

    client.get_item("Ticket", 1)
    assert client.get_item("Ticket", 1) == {"id": 1}

    assert router["init"].call_count == 2
    assert [call.request.headers["Session-Token"] for call in ticket.calls] == ["sess-1", "sess-1", "sess-2"]
    assert router["entities"].call_count == 2  # the new session gets the active entity too


def test_a_session_rejected_again_after_the_replay_is_an_auth_error(router, client):
    router["init"].side_effect = [
        httpx.Response(200, json={"session_token": "sess-1"}),
        httpx.Response(200, json={"session_token": "sess-2"}),
    ]
    router.get("/Ticket/1").mock(
        return_value=glpi_error(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid", doc=False)
    )

    with pytest.raises(UpstreamAuthError, match="PHP sessions persist"):
        client.get_item("Ticket", 1)
    assert router["init"].call_count == 2


def test_two_threads_hitting_an_expired_session_together_log_in_again_only_once(router, client):
    tokens = iter(["sess-1", "sess-2", "sess-3", "sess-4"])

    def slow_login(request: httpx.Request) -> httpx.Response:
        time.sleep(0.05)  # wide enough for both threads to want a session while one logs in
        return httpx.Response(200, json={"session_token": next(tokens)})

    router["init"].mock(side_effect=slow_login)
    both_in_flight = threading.Barrier(2, timeout=2)

    def ticket(request: httpx.Request) -> httpx.Response:
        if request.headers["Session-Token"] == "sess-1":
            both_in_flight.wait()  # both threads hold the expired token at the same moment
            return glpi_error(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid", doc=False)
        return httpx.Response(200, json={"id": 1, "seen_with": request.headers["Session-Token"]})

    router.get("/Ticket/1").mock(side_effect=ticket)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: client.get_item("Ticket", 1), range(2)))

    assert router["init"].call_count == 2  # the first login, then one re-login for both threads
    assert [result["seen_with"] for result in results] == ["sess-2", "sess-2"]


def test_a_bad_user_token_is_an_auth_error_that_does_not_show_the_token(router, client):
    router["init"].mock(
        return_value=glpi_error(401, "ERROR_GLPI_LOGIN_USER_TOKEN", "parameter user_token seems invalid", doc=False)
    )

    with pytest.raises(UpstreamAuthError) as caught:
        client.get_item("Ticket", 1)

    error = caught.value
    assert error.code == "ERROR_GLPI_LOGIN_USER_TOKEN" and error.status == 401 and not error.transient
    assert "check user_token in the source config" in str(error)
    assert "glpi-test" in str(error) and error.system == "glpi-test"
    for text in (str(error), repr(error), repr(error.args)):
        assert USER_TOKEN not in text and APP_TOKEN not in text
    assert router["init"].call_count == 1  # fatal: never retried


def test_api_disabled_at_login_is_an_auth_error(router, client):
    router["init"].mock(return_value=glpi_error(400, "ERROR", "API disabled", doc=False))

    with pytest.raises(UpstreamAuthError, match="REST API is enabled"):
        client.get_item("Ticket", 1)


def test_close_kills_the_session_and_ignores_failures(router, make):
    router.get("/Ticket/1").respond(200, json={"id": 1})
    with make() as client:
        client.get_item("Ticket", 1)
    assert router["kill"].calls.last.request.headers["Session-Token"] == "sess-1"

    router["kill"].mock(side_effect=httpx.ConnectError("gone"))
    other = make()
    other.get_item("Ticket", 1)
    other.close()  # no exception
    other.close()  # idempotent
    assert router["kill"].call_count == 2


def test_close_without_a_session_sends_nothing(router, make):
    make().close()
    assert router["init"].call_count == 0 and router["kill"].call_count == 0


def test_server_time_reads_the_full_session(router, client):
    router.get("/getFullSession").respond(
        200, json={"session": {"glpi_currenttime": "2024-05-01 12:00:03", "glpi_tz": "Europe/Paris"}}
    )

    now = client.server_time()

    assert (now.current_time, now.timezone) == ("2024-05-01 12:00:03", "Europe/Paris")


# --- listing --------------------------------------------------------------------------------------------------


def test_a_range_walk_follows_206_pages_and_stops_at_the_short_last_page(router, client):
    listing = router.get("/Ticket")
    listing.side_effect = [
        # 10.x's Content-Range `end` may be one too high: rows are counted, not trusted from the header
        httpx.Response(206, json=rows(1, 2), headers={"Content-Range": "0-2/5"}),
        httpx.Response(206, json=rows(3, 2), headers={"Content-Range": "2-3/5"}),
        httpx.Response(200, json=rows(5, 1), headers={"Content-Range": "4-4/5"}),
    ]

    pages = list(client.iter_pages("Ticket", page_size=2, sort="date_mod"))

    assert [[row["id"] for row in page.rows] for page in pages] == [[1, 2], [3, 4], [5]]
    assert [page.total for page in pages] == [5, 5, 5]
    assert [dict(query(call.request))["range"] for call in listing.calls] == ["0-1", "2-3", "4-5"]
    first = dict(query(listing.calls[0].request))
    assert (first["sort"], first["order"], first["is_deleted"]) == ("date_mod", "ASC", "false")


def test_the_walk_does_not_stop_on_a_total_that_is_too_low(router, client):
    router.get("/Ticket").side_effect = [
        httpx.Response(206, json=rows(1, 2), headers={"Content-Range": "0-1/2"}),
        httpx.Response(206, json=rows(3, 2), headers={"Content-Range": "2-3/2"}),
        httpx.Response(206, json=[], headers={"Content-Range": "4-3/2"}),
    ]

    assert [row["id"] for row in client.iter_items("Ticket", page_size=2)] == [1, 2, 3, 4]


def test_a_range_past_the_end_is_an_empty_page(router, client):
    router.get("/Ticket").mock(
        return_value=glpi_error(400, "ERROR_RANGE_EXCEED_TOTAL", "Provided range exceed total count of data: 40")
    )

    page = client.list_items("Ticket", start=1000, limit=50)

    assert page.rows == [] and not page.more and page.total is None


def test_an_empty_collection_without_content_range_has_total_zero(router, client):
    router.get("/Computer").respond(200, json=[])

    page = client.list_items("Computer", limit=50)

    assert (page.rows, page.total, page.more) == ([], 0, False)


def test_sub_items_are_walked_over_every_page(router, client):
    followups = router.get("/Ticket/7/ITILFollowup")
    followups.side_effect = [
        httpx.Response(206, json=rows(1, 3), headers={"Content-Range": "0-2/7"}),
        httpx.Response(206, json=rows(4, 3), headers={"Content-Range": "3-5/7"}),
        httpx.Response(200, json=rows(7, 1), headers={"Content-Range": "6-6/7"}),
    ]

    found = client.all_sub_items("Ticket", 7, "ITILFollowup", page_size=3)

    assert [row["id"] for row in found] == list(range(1, 8))
    assert [dict(query(call.request))["range"] for call in followups.calls] == ["0-2", "3-5", "6-8"]


def test_sub_items_of_a_missing_parent_raise_not_found(router, client):
    router.get("/Ticket/404/ITILFollowup").mock(return_value=glpi_error(404, "ERROR_ITEM_NOT_FOUND", "Item not found"))

    with pytest.raises(UpstreamNotFound):
        client.all_sub_items("Ticket", 404, "ITILFollowup")


def test_extra_params_cannot_override_the_range(client):
    with pytest.raises(ValueError, match="range"):
        client.list_items("Ticket", params={"range": "0-99999"})


# --- search ---------------------------------------------------------------------------------------------------


def test_search_encodes_criteria_in_php_array_syntax(router, client):
    search = router.get("/search/Ticket").respond(200, json={"totalcount": 0, "count": 0})

    client.search(
        "Ticket",
        [modified_since("2024-05-01 10:00:00"), criterion(12, "equals", 5, link="AND")],
        forcedisplay=[2, 19],
        sort=19,
        start=0,
        limit=100,
    )

    assert query(search.calls.last.request) == [
        ("criteria[0][field]", "19"),
        ("criteria[0][searchtype]", "morethan"),
        ("criteria[0][value]", "2024-05-01 10:00:00"),
        ("criteria[1][link]", "AND"),
        ("criteria[1][field]", "12"),
        ("criteria[1][searchtype]", "equals"),
        ("criteria[1][value]", "5"),
        ("forcedisplay[0]", "2"),
        ("forcedisplay[1]", "19"),
        ("sort", "19"),
        ("order", "ASC"),
        ("range", "0-99"),
        ("is_deleted", "false"),
        ("get_hateoas", "false"),
    ]


def test_booleans_are_sent_the_way_php_reads_them(router, client):
    search = router.get("/search/Ticket").respond(200, json={"totalcount": 0, "count": 0})

    client.search("Ticket", [{"field": 4, "searchtype": "equals", "value": 7, "meta": False}], is_deleted=True)

    sent = dict(query(search.calls.last.request))
    # GLPI turns only top-level "true"/"false" into booleans; inside an array PHP's "false" would be truthy
    assert (sent["criteria[0][meta]"], sent["is_deleted"]) == ("0", "true")


def test_an_empty_search_without_data_is_an_empty_page(router, client):
    router.get("/search/Ticket").respond(200, json={"totalcount": 0, "count": 0, "content-range": "0--1/0"})

    page = client.search("Ticket", [modified_since("2024-05-01 10:00:00")])

    assert (page.rows, page.total, page.more) == ([], 0, False)


def test_search_rows_that_are_not_objects_are_skipped_and_counted(router, client):
    router.get("/search/Ticket").respond(
        200,
        json={"totalcount": None, "count": 3, "data": [{"2": 101}, False, {"2": 103}]},
        headers={"Content-Range": "0-2/3"},
    )

    page = client.search("Ticket", [], limit=10)

    assert page.rows == [{"2": 101}, {"2": 103}]
    assert page.skipped == 1 and page.total == 3  # null totalcount: Content-Range's total


def test_modified_since_wants_glpi_local_time():
    assert modified_since(datetime(2024, 5, 1, 10, 0, 3, 999))["value"] == "2024-05-01 10:00:03"
    with pytest.raises(ValueError, match="naive"):
        modified_since(datetime(2024, 5, 1, tzinfo=UTC))


# --- retries --------------------------------------------------------------------------------------------------


def test_a_429_waits_what_retry_after_says_then_succeeds(router, client, sleeps):
    router.get("/Ticket/1").side_effect = [
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(200, json={"id": 1}),
    ]

    assert client.get_item("Ticket", 1) == {"id": 1}
    assert sleeps == [3.0]


def test_retry_after_as_an_http_date_is_measured_against_the_answers_date(router, client, sleeps):
    router.get("/Ticket/1").side_effect = [
        httpx.Response(
            503, headers={"Retry-After": "Wed, 01 May 2024 10:00:08 GMT", "Date": "Wed, 01 May 2024 10:00:03 GMT"}
        ),
        httpx.Response(200, json={"id": 1}),
    ]

    client.get_item("Ticket", 1)

    assert sleeps == [5.0]


def test_a_huge_retry_after_is_capped(router, make, sleeps):
    router.get("/Ticket/1").side_effect = [
        httpx.Response(503, headers={"Retry-After": "86400"}),
        httpx.Response(200, json={"id": 1}),
    ]

    make(retry_after_cap=60).get_item("Ticket", 1)

    assert sleeps == [60]


def test_a_500_then_success_backs_off_once(router, client, sleeps):
    ticket = router.get("/Ticket/1")
    ticket.side_effect = [
        glpi_error(500, "ERROR_SQL", "SQL error", doc=False),
        httpx.Response(200, json={"id": 1}),
    ]

    assert client.get_item("Ticket", 1) == {"id": 1}
    assert ticket.call_count == 2
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 2.0  # backoff_base * 2**0 plus up to backoff_base of jitter


def test_5xx_forever_gives_up_after_the_budget_as_unavailable(router, make, sleeps, caplog):
    ticket = router.get("/Ticket/1").respond(503, text="<html>Service Unavailable</html>")
    client = make(retry_attempts=4)

    with caplog.at_level(logging.WARNING, logger="itsm.connectors.glpi"), pytest.raises(UpstreamUnavailable) as caught:
        client.get_item("Ticket", 1)

    assert ticket.call_count == 4 and len(sleeps) == 3
    assert sleeps == sorted(sleeps)  # exponential
    error = caught.value
    assert error.transient and error.status == 503 and not error.maybe_applied
    assert "after 4 attempts (last: HTTP 503)" in str(error)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3


def test_a_timeout_on_a_read_is_retried(router, client, sleeps):
    ticket = router.get("/Ticket/1")
    ticket.side_effect = [httpx.ReadTimeout("slow"), httpx.Response(200, json={"id": 1})]

    assert client.get_item("Ticket", 1) == {"id": 1}
    assert ticket.call_count == 2 and len(sleeps) == 1


def test_a_post_that_times_out_is_not_retried(router, client, sleeps):
    post = router.post("/ITILFollowup").mock(side_effect=httpx.ReadTimeout("slow"))

    with pytest.raises(UpstreamUnavailable) as caught:
        client.add("ITILFollowup", {"itemtype": "Ticket", "items_id": 42, "content": "Done"})

    assert post.call_count == 1 and sleeps == []
    assert caught.value.maybe_applied and "check the record in GLPI" in str(caught.value)


def test_a_post_answered_500_is_not_retried(router, client, sleeps):
    post = router.post("/ITILSolution").mock(return_value=glpi_error(500, "ERROR_SQL", "SQL error", doc=False))

    with pytest.raises(UpstreamUnavailable) as caught:
        client.add("ITILSolution", {"itemtype": "Ticket", "items_id": 42, "content": "Fixed"})

    assert post.call_count == 1 and caught.value.maybe_applied and caught.value.code == "ERROR_SQL"


def test_a_post_that_surely_was_not_applied_is_retried(router, client, sleeps):
    post = router.post("/ITILFollowup")
    post.side_effect = [
        httpx.ConnectError("connection refused"),
        httpx.Response(503, headers={"Retry-After": "1"}),
        httpx.Response(201, json={"id": 77, "message": ""}),
    ]

    assert client.add("ITILFollowup", {"itemtype": "Ticket", "items_id": 42, "content": "Done"}) == 77
    assert post.call_count == 3 and len(sleeps) == 2


# --- errors ---------------------------------------------------------------------------------------------------


def test_an_html_page_instead_of_json_says_to_check_the_base_url(router, client):
    router["init"].respond(200, text="<html><body>Please log in</body></html>", headers={"Content-Type": "text/html"})

    with pytest.raises(UpstreamError) as caught:
        client.get_item("Ticket", 1)

    assert type(caught.value) is UpstreamError and not caught.value.transient
    assert "text/html instead of JSON" in str(caught.value) and "check base_url" in str(caught.value)


def test_an_html_5xx_page_is_transient(router, client, sleeps):
    router.get("/Ticket/1").side_effect = [
        httpx.Response(502, text="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"}),
        httpx.Response(200, json={"id": 1}),
    ]

    assert client.get_item("Ticket", 1) == {"id": 1}
    assert len(sleeps) == 1


def test_a_redirect_is_not_followed(router, client):
    router["init"].respond(302, headers={"Location": "https://sso.example.org/login?next=/glpi"})

    with pytest.raises(UpstreamError, match=r"redirected \(302\) to https://sso.example.org/login"):
        client.get_item("Ticket", 1)


def test_a_missing_right_is_forbidden(router, client):
    router.get("/Ticket/9").mock(
        return_value=glpi_error(403, "ERROR_RIGHT_MISSING", "You don't have permission to perform this action.")
    )

    with pytest.raises(UpstreamForbidden, match="READALL for tickets") as caught:
        client.get_item("Ticket", 9)

    assert caught.value.detail == "You don't have permission to perform this action."


def test_a_missing_item_is_not_found(router, client):
    router.get("/Ticket/404").mock(return_value=glpi_error(404, "ERROR_ITEM_NOT_FOUND", "Item not found"))

    with pytest.raises(UpstreamNotFound) as caught:
        client.get_item("Ticket", 404)

    assert caught.value.code == "ERROR_ITEM_NOT_FOUND" and caught.value.status == 404


def test_a_business_refusal_is_rejected_with_glpis_message_without_the_doc_tail(router, client):
    message = "The item is already solved, did anyone pushed a solution before you?"
    router.post("/ITILSolution").mock(return_value=glpi_error(400, "ERROR_GLPI_ADD", message))

    with pytest.raises(UpstreamRejected) as caught:
        client.add("ITILSolution", {"itemtype": "Ticket", "items_id": 42, "content": "Fixed"})

    error = caught.value
    assert error.detail == message and error.code == "ERROR_GLPI_ADD"
    assert "view documentation" not in str(error) and message in str(error)


def test_the_doc_tail_is_removed_in_any_language():
    french = f"Vous n'avez pas les droits; voir la documentation dans votre navigateur à {BASE}/#ERROR_RIGHT_MISSING"
    assert clean_message(french, "ERROR_RIGHT_MISSING") == "Vous n'avez pas les droits"


def test_an_unknown_itemtype_names_the_config_to_fix(router, client):
    router.get("/Computr").mock(
        return_value=glpi_error(
            400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM", "resource not found or not an instance of CommonDBTM"
        )
    )

    with pytest.raises(UpstreamError, match="does not know the itemtype 'Computr'"):
        client.list_items("Computr")


# --- writes ---------------------------------------------------------------------------------------------------


def test_add_sends_raw_text_and_returns_the_new_id(router, client):
    post = router.post("/ITILFollowup").respond(201, json={"id": 15, "message": ""})

    new_id = client.add("ITILFollowup", {"itemtype": "Ticket", "items_id": 42, "content": "<p>a & b</p>"})

    assert new_id == 15
    assert json.loads(post.calls.last.request.content) == {
        "input": {"itemtype": "Ticket", "items_id": 42, "content": "<p>a & b</p>"}
    }


def test_a_partial_bulk_add_reports_each_element(router, client):
    router.post("/ITILFollowup").respond(
        207,
        json=[
            "ERROR_GLPI_PARTIAL_ADD",
            [{"id": 8, "message": ""}, {"id": False, "message": "You can't add a followup without description"}],
        ],
    )

    results = client.add_many(
        "ITILFollowup",
        [{"itemtype": "Ticket", "items_id": 1, "content": "ok"}, {"itemtype": "Ticket", "items_id": 1, "content": ""}],
    )

    assert results == [
        WriteResult(id=8, ok=True, message=""),
        WriteResult(id=None, ok=False, message="You can't add a followup without description"),
    ]


def test_a_bulk_add_that_fully_succeeds_returns_every_id(router, client):
    router.post("/Ticket_User").respond(201, json=[{"id": 3, "message": ""}, {"id": 4, "message": ""}])

    results = client.add_many("Ticket_User", [{"tickets_id": 1, "users_id": 7, "type": 2}] * 2)

    assert [result.id for result in results] == [3, 4] and all(result.ok for result in results)


def test_update_succeeds_on_true_and_is_rejected_on_false(router, client):
    router.put("/Ticket/10").respond(200, json=[{"10": True, "message": ""}])
    router.put("/Ticket/11").respond(200, json=[{"11": False, "message": "Mandatory field missing: Category"}])

    client.update("Ticket", 10, {"status": 4})
    with pytest.raises(UpstreamRejected) as caught:
        client.update("Ticket", 11, {"status": 5})

    assert caught.value.detail == "Mandatory field missing: Category"


def test_delete_can_purge(router, client):
    delete = router.delete("/Ticket/16").respond(200, json=[{"16": True, "message": ""}])

    client.delete("Ticket", 16, force_purge=True)

    assert ("force_purge", "true") in query(delete.calls.last.request)


def test_get_many_falls_back_to_one_by_one_and_reports_the_missing(router, client):
    multiple = router.get("/getMultipleItems").mock(
        return_value=glpi_error(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
    )
    router.get("/Ticket/1").respond(200, json={"id": 1})
    router.get("/Ticket/2").mock(return_value=glpi_error(404, "ERROR_ITEM_NOT_FOUND", "Item not found"))
    router.get("/Ticket/3").respond(200, json={"id": 3})

    found = client.get_many("Ticket", [1, 2, 3])

    assert [item["id"] for item in found.items] == [1, 3]
    assert found.missing == [2] and found.forbidden == []
    assert query(multiple.calls[0].request)[:4] == [
        ("items[0][itemtype]", "Ticket"),
        ("items[0][items_id]", "1"),
        ("items[1][itemtype]", "Ticket"),
        ("items[1][items_id]", "2"),
    ]


@pytest.mark.parametrize("parallel", [False, True], ids=["in-turn", "parallel"])
def test_get_many_halves_a_refused_batch_instead_of_asking_for_each_item(router, client, parallel):
    def multiple(request: httpx.Request) -> httpx.Response:
        ids = [int(value) for key, value in query(request) if key.endswith("[items_id]")]
        if 37 in ids or 80 in ids:
            return glpi_error(404 if 37 in ids else 403, "ERROR_ITEM_NOT_FOUND", "Item not found")
        return httpx.Response(200, json=[{"id": item_id} for item_id in ids])

    def single(request: httpx.Request) -> httpx.Response:
        item_id = int(request.url.path.rsplit("/", 1)[1])
        if item_id == 37:
            return glpi_error(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
        if item_id == 80:
            return glpi_error(403, "ERROR_RIGHT_MISSING", "You don't have permission")
        return httpx.Response(200, json={"id": item_id})

    route = router.get("/getMultipleItems").mock(side_effect=multiple)
    singles = router.get(path__regex=r"/Ticket/\d+$").mock(side_effect=single)

    with ThreadPoolExecutor(max_workers=3) as pool:
        found = client.get_many("Ticket", list(range(1, 101)), chunk_size=40, parallel=pool if parallel else None)

    assert [item["id"] for item in found.items] == [i for i in range(1, 101) if i not in (37, 80)]
    assert found.missing == [37] and found.forbidden == [80]
    # two refused ids, each found by halving (about log2(100) levels, two requests a level); not 100 requests
    assert route.call_count + singles.call_count <= 2 * 2 * 7


# --- concurrency and secrets ----------------------------------------------------------------------------------


def test_requests_in_flight_never_exceed_max_concurrency(router, make):
    lock = threading.Lock()
    in_flight = {"now": 0, "most": 0}

    def slow(request: httpx.Request) -> httpx.Response:
        with lock:
            in_flight["now"] += 1
            in_flight["most"] = max(in_flight["most"], in_flight["now"])
        time.sleep(0.05)
        with lock:
            in_flight["now"] -= 1
        return httpx.Response(200, json={"id": 1})

    router.get(path__regex=r"/Ticket/\d+$").mock(side_effect=slow)
    client = make(max_concurrency=2)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: client.get_item("Ticket", i), range(8)))

    assert in_flight["most"] == 2


def test_secrets_never_appear_in_repr_errors_or_logs(router, make, caplog):
    caplog.set_level(logging.DEBUG)
    token_client = make()
    basic_client = make(login="itsm-hub", password=PASSWORD)
    router.get("/Ticket/1").side_effect = [httpx.Response(503), httpx.Response(200, json={"id": 1})]
    token_client.get_item("Ticket", 1)  # a login, a retry warning, a read

    def echo(request: httpx.Request) -> httpx.Response:
        # an answer echoing what it was sent must not smuggle a secret into a message
        sent = f"{request.headers['Authorization']} {request.headers['App-Token']}"
        return glpi_error(401, "ERROR_GLPI_LOGIN", f"refused {sent} {PASSWORD}")

    router["init"].mock(side_effect=echo)

    texts = [repr(token_client), str(token_client), repr(basic_client), repr(vars(token_client)), caplog.text]
    secrets = (USER_TOKEN, APP_TOKEN, base64.b64encode(f"itsm-hub:{PASSWORD}".encode()).decode())
    for client in (make(), basic_client):
        with pytest.raises(UpstreamAuthError) as caught:
            client.get_item("Ticket", 2)
        texts += [str(caught.value), repr(caught.value), str(caught.value.detail)]
        assert "*** ***" in str(caught.value)  # what was echoed, masked

    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert PASSWORD not in texts[-1]  # the basic client's own password


def test_a_document_downloads_as_bytes_with_its_type_and_name(router, client):
    route = router.get("/Document/7").respond(
        200,
        content=b"%PDF-1.7 \x00\xff",
        headers={
            "Content-Type": "application/pdf",
            "Content-Disposition": "attachment; filename*=UTF-8''Rechnung%20%26%20Lieferschein.pdf",
        },
    )
    download = client.download(7)
    assert (download.content, download.content_type, download.filename) == (
        b"%PDF-1.7 \x00\xff",
        "application/pdf",
        "Rechnung & Lieferschein.pdf",
    )
    assert route.calls.last.request.headers["Accept"] == "application/octet-stream"
    assert route.calls.last.request.headers["Session-Token"] == "sess-1"


def test_a_purged_document_is_not_found_not_a_file(router, client):
    router.get("/Document/8").mock(return_value=glpi_error(404, "ERROR_ITEM_NOT_FOUND", "Item not found"))
    with pytest.raises(UpstreamNotFound):
        client.download(8)


# --- documents over the size cap ------------------------------------------------------------------------------


class Body(httpx.SyncByteStream):
    """A file sent in `chunks` pieces of `chunk` bytes; records how much was pulled and whether it was closed."""

    def __init__(self, chunks: int, chunk: int = 1024, *, fail_after: int | None = None) -> None:
        self.chunks, self.chunk, self.fail_after = chunks, chunk, fail_after
        self.pulled = 0
        self.closed = False

    def __iter__(self):
        for n in range(self.chunks):
            if self.fail_after is not None and n == self.fail_after:
                raise httpx.ReadError("connection reset by peer")
            self.pulled += self.chunk
            yield b"x" * self.chunk

    def close(self) -> None:
        self.closed = True


def file_answer(body: Body, *, length: int | None) -> httpx.Response:
    headers = {"Content-Type": "application/pdf", "Content-Disposition": "attachment; filename*=UTF-8''big.pdf"}
    if length is not None:
        headers["Content-Length"] = str(length)
    return httpx.Response(200, headers=headers, stream=body)


def test_a_document_under_the_cap_downloads_whole_asked_uncompressed(router, client):
    body = Body(chunks=4)
    route = router.get("/Document/7").mock(side_effect=lambda request: file_answer(body, length=4096))
    download = client.download(7, max_bytes=4096)  # exactly the cap is not over it
    assert download.content == b"x" * 4096 and download.filename == "big.pdf"
    assert route.calls.last.request.headers["Accept-Encoding"] == "identity"  # so Content-Length is the file's size


def test_a_document_whose_content_length_is_over_the_cap_is_refused_without_reading_it(router, client):
    body = Body(chunks=5000)
    router.get("/Document/7").mock(side_effect=lambda request: file_answer(body, length=5_120_000))
    with pytest.raises(FileTooLarge) as caught:
        client.download(7, max_bytes=4096)
    assert (caught.value.size, caught.value.limit) == (5_120_000, 4096)
    assert str(caught.value) == (
        "glpi-test: document 7 (5120000 bytes) left out: over max_document_bytes (4096); raise max_document_bytes "
        "in the source config to import it"
    )
    assert body.pulled == 0 and body.closed  # not one byte read; the connection dropped


def test_a_document_without_content_length_stops_streaming_one_chunk_past_the_cap(router, client, sleeps):
    body = Body(chunks=5000)  # 5 MB on offer
    router.get("/Document/7").mock(side_effect=lambda request: file_answer(body, length=None))
    with pytest.raises(FileTooLarge) as caught:
        client.download(7, max_bytes=4096)
    assert caught.value.size is None and "document 7 (more than 4096 bytes) left out" in str(caught.value)
    assert body.pulled <= 4096 + body.chunk and body.closed  # memory: the cap plus one chunk, then it stopped
    assert sleeps == []  # a file too large is not retried: it would not shrink


def test_a_connection_lost_mid_document_is_retried_like_any_read(router, client, sleeps):
    bodies = [Body(chunks=3, fail_after=1), Body(chunks=3)]
    router.get("/Document/7").mock(side_effect=lambda request: file_answer(bodies.pop(0), length=3072))
    assert client.download(7, max_bytes=4096).content == b"x" * 3072
    assert len(sleeps) == 1


def test_an_error_answer_to_a_capped_download_is_mapped_as_usual(router, client):
    router.get("/Document/8").mock(return_value=glpi_error(404, "ERROR_ITEM_NOT_FOUND", "Item not found"))
    with pytest.raises(UpstreamNotFound):
        client.download(8, max_bytes=10)
