"""The GLPI simulator over real HTTP: GLPI 10's legacy REST API shapes, quirks and business rules."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from simulators.glpi.simdata import MALFORMED_KINDS, encode_html
from simulators.glpi.simulator import HUB_USER_TOKEN, TECH_USER_TOKEN, GlpiSimulator

PARIS = ZoneInfo("Europe/Paris")
ANCHOR = datetime(2026, 6, 1, tzinfo=UTC)


class Clock:
    """A settable 'now' for the simulator (dates it writes, session expiry)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def glpi(self) -> str:
        """'Now' as the simulator writes it: zone-less, in Europe/Paris."""
        return self.now.astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")


class Api:
    """A thin test client: one session, JSON in and out."""

    def __init__(self, sim: GlpiSimulator, token: str = HUB_USER_TOKEN, headers: dict[str, str] | None = None):
        self.http = httpx.Client(base_url=sim.url, timeout=10, headers=headers or {})
        response = self.http.get("/initSession", headers={"Authorization": f"user_token {token}"})
        assert response.status_code == 200, response.text
        self.token = response.json()["session_token"]
        self.http.headers["Session-Token"] = self.token

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def post(self, path: str, payload: Any) -> httpx.Response:
        return self.http.post(path, json={"input": payload})

    def put(self, path: str, payload: Any) -> httpx.Response:
        return self.http.put(path, json={"input": payload})

    def delete(self, path: str, **params: Any) -> httpx.Response:
        return self.http.delete(path, params=params)


@pytest.fixture
def api(glpi_sim: GlpiSimulator) -> Iterator[Api]:
    client = Api(glpi_sim)
    yield client
    client.http.close()


@pytest.fixture
def clocked() -> Iterator[tuple[GlpiSimulator, Clock]]:
    """A small GLPI whose clock the test moves."""
    clock = Clock(datetime(2026, 7, 1, 8, 0, tzinfo=UTC))
    with GlpiSimulator(tickets=10, seed=3, clock=clock, anchor=ANCHOR, session_ttl_seconds=600) as sim:
        yield sim, clock


def live_ids(sim: GlpiSimulator) -> list[int]:
    """Tickets not in the trash: what lists and searches show by default."""
    return [row["id"] for row in sim.rows("Ticket") if not row["is_deleted"]]


def search(api: Api, **params: Any) -> httpx.Response:
    return api.get("/search/Ticket", **params)


def criterion(index: int, field: int, searchtype: str, value: Any, link: str | None = None) -> dict[str, Any]:
    found = {
        f"criteria[{index}][field]": field,
        f"criteria[{index}][searchtype]": searchtype,
        f"criteria[{index}][value]": value,
    }
    if link:
        found[f"criteria[{index}][link]"] = link
    return found


# --- sessions and login errors --------------------------------------------------------------------------------


def test_a_session_opens_with_a_user_token_and_ends_with_kill_session(glpi_sim):
    client = Api(glpi_sim)
    assert client.get("/Ticket/1").status_code == 200
    killed = client.get("/killSession")
    assert (killed.status_code, killed.json()) == (200, True)
    after = client.get("/Ticket/1")
    assert after.status_code == 401
    assert after.json() == ["ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid"]
    assert after.headers["content-type"] == "application/json; charset=UTF-8"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 400, "ERROR_LOGIN_PARAMETERS_MISSING"),
        ({"Authorization": "user_token not-a-token"}, 401, "ERROR_GLPI_LOGIN_USER_TOKEN"),
        ({"Authorization": "Basic dGVjaDp0ZWNo"}, 400, "ERROR_LOGIN_WITH_CREDENTIALS_DISABLED"),
    ],
)
def test_login_errors_are_glpi_codes(glpi_sim, headers, status, code):
    response = httpx.get(f"{glpi_sim.url}/initSession", headers=headers)
    assert response.status_code == status
    assert response.json()[0] == code


def test_error_messages_point_to_the_documentation_like_glpi(glpi_sim):
    body = httpx.get(f"{glpi_sim.url}/initSession").json()
    assert body[1] == (
        "parameter(s) login, password or user_token are missing; "
        f"view documentation in your browser at {glpi_sim.url}/#ERROR_LOGIN_PARAMETERS_MISSING"
    )


def test_basic_login_when_glpi_allows_it():
    with GlpiSimulator(tickets=5, credentials={"itsm-hub": "s3cret"}) as sim:
        good = httpx.get(f"{sim.url}/initSession", auth=("itsm-hub", "s3cret"))
        bad = httpx.get(f"{sim.url}/initSession", auth=("itsm-hub", "wrong"))
    assert good.status_code == 200 and good.json()["session_token"]
    assert bad.status_code == 401 and bad.json()[0] == "ERROR_GLPI_LOGIN"


def test_app_token_is_required_when_the_api_client_has_one():
    with GlpiSimulator(tickets=5, app_token="app-123") as sim:
        auth = {"Authorization": f"user_token {HUB_USER_TOKEN}"}
        missing = httpx.get(f"{sim.url}/initSession", headers=auth)
        wrong = httpx.get(f"{sim.url}/initSession", headers={**auth, "App-Token": "nope"})
        good = httpx.get(f"{sim.url}/initSession", headers={**auth, "App-Token": "app-123"})
        token = good.json()["session_token"]
        later = httpx.get(f"{sim.url}/Ticket/1", headers={"Session-Token": token})
    assert (missing.status_code, missing.json()[0]) == (400, "ERROR_APP_TOKEN_PARAMETERS_MISSING")
    assert (wrong.status_code, wrong.json()[0]) == (400, "ERROR_WRONG_APP_TOKEN_PARAMETER")
    assert good.status_code == 200
    assert (later.status_code, later.json()[0]) == (400, "ERROR_APP_TOKEN_PARAMETERS_MISSING")


def test_session_token_missing_and_get_with_a_body(glpi_sim, api):
    missing = httpx.get(f"{glpi_sim.url}/Ticket")
    assert (missing.status_code, missing.json()[0]) == (400, "ERROR_SESSION_TOKEN_MISSING")
    with_body = api.http.request("GET", "/Ticket", content=b'{"range": "0-1"}')
    assert (with_body.status_code, with_body.json()[0]) == (400, "ERROR_JSON_PAYLOAD_FORBIDDEN")


def test_expired_sessions_answer_401_and_a_new_session_works(fresh_glpi_sim):
    client = Api(fresh_glpi_sim)
    assert fresh_glpi_sim.expire_sessions() == 1
    response = client.get("/Ticket/1")
    assert (response.status_code, response.json()[0]) == (401, "ERROR_SESSION_TOKEN_INVALID")
    assert Api(fresh_glpi_sim).get("/Ticket/1").status_code == 200


def test_sessions_expire_after_the_idle_time_and_use_refreshes_them(clocked):
    sim, clock = clocked
    client = Api(sim)
    clock.advance(500)
    assert client.get("/Ticket/1").status_code == 200  # used: idle time starts again
    clock.advance(500)
    assert client.get("/Ticket/1").status_code == 200
    clock.advance(601)
    assert client.get("/Ticket/1").json()[0] == "ERROR_SESSION_TOKEN_INVALID"


def test_full_session_tells_the_zone_the_time_and_the_user(clocked):
    sim, clock = clocked
    session = Api(sim).get("/getFullSession").json()["session"]
    assert session["glpi_tz"] == "Europe/Paris"
    assert session["glpi_currenttime"] == clock.glpi()
    assert (session["glpiID"], session["glpiname"]) == (sim.user_id("itsm-hub"), "itsm-hub")


# --- lists and ranges -----------------------------------------------------------------------------------------


def test_a_range_walk_answers_206_with_content_range_and_200_when_one_page_holds_all(api, glpi_sim):
    live = live_ids(glpi_sim)
    total = len(live)
    assert 30 < total <= 40  # the generated 40 minus the few in the trash
    pages = [api.get("/Ticket", range=r, get_hateoas="false") for r in ("0-14", "15-29", "30-44")]
    assert [p.status_code for p in pages] == [206, 206, 206]  # no page holds all rows, the last one neither
    assert [p.headers["Content-Range"] for p in pages] == [f"0-14/{total}", f"15-29/{total}", f"30-{total - 1}/{total}"]
    assert [row["id"] for p in pages for row in p.json()] == live
    assert all(p.headers["Accept-Range"] == "Ticket 1000" for p in pages)
    whole = api.get("/Ticket", range="0-99")
    assert (whole.status_code, whole.headers["Content-Range"], len(whole.json())) == (
        200,
        f"0-{total - 1}/{total}",
        total,
    )


def test_without_range_15_rows_come_back_but_content_range_says_16(api, glpi_sim):
    response = api.get("/Ticket")
    assert len(response.json()) == 15
    assert response.headers["Content-Range"] == f"0-15/{len(live_ids(glpi_sim))}"
    assert response.status_code == 206


def test_ranges_past_the_end(api, glpi_sim):
    total = len(live_ids(glpi_sim))
    beyond = api.get("/Ticket", range=f"{total + 1}-{total + 10}")
    assert (beyond.status_code, beyond.json()[0]) == (400, "ERROR_RANGE_EXCEED_TOTAL")
    at_end = api.get("/Ticket", range=f"{total}-{total + 9}")
    assert (at_end.status_code, at_end.json()) == (206, [])
    assert at_end.headers["Content-Range"] == f"{total}-{total - 1}/{total}"
    malformed = api.get("/Ticket", range="0to9")
    assert (malformed.status_code, malformed.json()[0]) == (400, "ERROR")


def test_sort_by_column_and_unknown_columns(api, glpi_sim):
    response = api.get("/Ticket", sort="date_mod", order="DESC", range="0-99")
    dates = [row["date_mod"] for row in response.json()]
    assert dates == sorted(dates, reverse=True)
    unknown = api.get("/Ticket", sort="modified")
    assert unknown.status_code == 400
    assert unknown.json()[0] == "ERROR" and "sort param is not a field of glpi_tickets" in unknown.json()[1]
    assert api.get("/Ticket", order="UP").json()[0] == "ERROR"


def test_ties_are_in_id_order_both_ways(clocked):
    sim, _ = clocked
    ids = [sim.add_ticket(f"same second {n}") for n in range(3)]  # same clock: same date_mod
    client = Api(sim)
    for order in ("ASC", "DESC"):
        rows = client.get("/Ticket", sort="date_mod", order=order, range="0-99").json()
        tied = [row["id"] for row in rows if row["id"] in ids]
        assert tied == ids


def test_is_deleted_lists_only_the_trash(fresh_glpi_sim):
    client = Api(fresh_glpi_sim)
    trashed_before = {row["id"] for row in fresh_glpi_sim.rows("Ticket", is_deleted=1)}
    fresh_glpi_sim.trash("Ticket", 5)
    trash = client.get("/Ticket", is_deleted="true", range="0-99").json()
    assert {row["id"] for row in trash} == trashed_before | {5}
    assert 5 not in {row["id"] for row in client.get("/Ticket", range="0-99").json()}


def test_templates_are_listed_by_get_items_but_not_by_search(api):
    listed = api.get("/Computer", range="0-999", only_id="true").json()
    templates = [row for row in api.get("/Computer", range="0-999").json() if row["is_template"]]
    assert templates and {row["id"] for row in templates} <= {row["id"] for row in listed}
    assert listed[0] == {"id": 1, "links": listed[0]["links"]}
    found = api.get("/search/Computer", range="0-999", **{"forcedisplay[0]": 2}).json()
    assert not {row["2"] for row in found["data"]} & {row["id"] for row in templates}


def test_hateoas_links_and_how_to_turn_them_off(api, glpi_sim):
    ticket = api.get("/Ticket/3").json()
    rels = [link["rel"] for link in ticket["links"]]
    assert rels[0] == "Entity" and "ITILFollowup" in rels and "Ticket_User" in rels
    assert f"{glpi_sim.url}/Ticket/3/ITILFollowup/" in {link["href"] for link in ticket["links"]}
    assert "links" not in api.get("/Ticket/3", get_hateoas="false").json()
    assert api.get("/Ticket/3").headers["Last-Modified"].endswith("GMT")


def test_items_one_by_one_and_all_or_nothing_batches(api):
    missing = api.get("/Ticket/999")
    assert (missing.status_code, missing.json()) == (404, ["ERROR_ITEM_NOT_FOUND", "Item not found"])
    batch = {
        "items[0][itemtype]": "Ticket",
        "items[0][items_id]": 1,
        "items[1][itemtype]": "User",
        "items[1][items_id]": 4,
    }
    both = api.get("/getMultipleItems", **batch)
    assert [row["id"] for row in both.json()] == [1, 4]
    batch["items[1][items_id]"] = 99999
    assert api.get("/getMultipleItems", **batch).status_code == 404
    assert api.get("/NoSuchType").json()[0] == "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM"


def test_users_and_their_emails_are_separate_itemtypes(api, glpi_sim):
    hub = glpi_sim.user_id("itsm-hub")
    user = api.get(f"/User/{hub}").json()
    emails = api.get(f"/User/{hub}/UserEmail").json()
    assert user["name"] == "itsm-hub" and "email" not in user
    assert [(row["email"], row["is_default"]) for row in emails] == [("itsm-hub@example.org", 1)]


def test_change_active_entities_restricts_what_is_visible(fresh_glpi_sim):
    client = Api(fresh_glpi_sim)
    paris = [row for row in fresh_glpi_sim.rows("Ticket") if row["entities_id"] == 1]
    other = next(row for row in fresh_glpi_sim.rows("Ticket") if row["entities_id"] != 1)
    assert client.http.post("/changeActiveEntities", json={"entities_id": 1, "is_recursive": True}).json() is True
    visible = client.get("/Ticket", range="0-99", is_deleted=0).json()
    assert {row["id"] for row in visible} == {row["id"] for row in paris if not row["is_deleted"]}
    assert client.get(f"/Ticket/{other['id']}").status_code == 403
    assert client.http.post("/changeActiveEntities", json={"entities_id": "all"}).json() is True
    assert client.get(f"/Ticket/{other['id']}").status_code == 200


# --- sub-items ------------------------------------------------------------------------------------------------


def test_sub_items_are_paginated_with_the_default_page_size(glpi_sim, api):
    ticket = glpi_sim.add_ticket("Chatty ticket", requester="normal", assign="tech")
    for n in range(20):
        glpi_sim.add_followup(ticket, f"<p>note {n}</p>")
    default = api.get(f"/Ticket/{ticket}/ITILFollowup")
    assert (default.status_code, len(default.json()), default.headers["Content-Range"]) == (206, 15, "0-15/20")
    everything = api.get(f"/Ticket/{ticket}/ITILFollowup", range="0-99")
    assert (everything.status_code, len(everything.json())) == (200, 20)
    assert {row["items_id"] for row in everything.json()} == {ticket}
    actors = api.get(f"/Ticket/{ticket}/Ticket_User").json()
    assert {(row["users_id"], row["type"]) for row in actors} == {
        (glpi_sim.user_id("normal"), 1),
        (glpi_sim.user_id("tech"), 2),
    }
    assert api.get("/Ticket/9999/ITILFollowup").status_code == 404


# --- search ---------------------------------------------------------------------------------------------------


def test_search_by_date_mod_morethan_sorted_ascending(api, glpi_sim):
    live = sorted((row["date_mod"], row["id"]) for row in glpi_sim.rows("Ticket") if not row["is_deleted"])
    since = live[len(live) // 2][0]
    params = {
        **criterion(0, 19, "morethan", since),
        "forcedisplay[0]": 2,
        "forcedisplay[1]": 19,
        "sort": 19,
        "order": "ASC",
        "range": "0-999",
    }
    body = search(api, **params).json()
    expected = [ticket_id for date_mod, ticket_id in live if date_mod > since]  # strict, like GLPI's SQL
    assert [row["2"] for row in body["data"]] == expected
    assert [row["19"] for row in body["data"]] == sorted(row["19"] for row in body["data"])
    assert (body["totalcount"], body["count"], body["sort"], body["order"]) == (
        len(expected),
        len(expected),
        [19],
        ["ASC"],
    )
    assert body["content-range"] == f"0-{len(expected) - 1}/{len(expected)}"
    assert set(body["data"][0]) == {"1", "2", "19", "80"}


def test_an_empty_search_has_no_data_key(api):
    response = search(api, **criterion(0, 1, "contains", "no ticket is called this"))
    assert response.status_code == 200
    assert response.json() == {"totalcount": 0, "count": 0, "sort": [1], "order": ["ASC"], "content-range": "0--1/0"}
    assert "Content-Range" not in response.headers


def test_search_on_ids_puts_the_operator_in_the_value(api, glpi_sim):
    above = search(api, **criterion(0, 2, "contains", ">30"), range="0-99", sort=2).json()
    assert [row["2"] for row in above["data"]] == [ticket_id for ticket_id in live_ids(glpi_sim) if ticket_id > 30]
    # GLPI's trap: on a number, `morethan 30` ignores the searchtype and means "= 30".
    bare = search(api, **criterion(0, 2, "morethan", "30")).json()
    assert [row["2"] for row in bare["data"]] == [30]


def test_search_values_are_what_glpi_displays(api, glpi_sim):
    ticket = glpi_sim.ticket(1)
    body = search(api, **criterion(0, 2, "equals", 1), **{"forcedisplay[0]": 12, "forcedisplay[1]": 4}).json()
    row = body["data"][0]
    assert row["12"] == ticket["status"] and isinstance(row["12"], int)
    entity = glpi_sim.row("Entity", ticket["entities_id"])
    assert row["80"] == entity["completename"]
    requesters = [
        glpi_sim.row("User", actor["users_id"])["name"]
        for actor in glpi_sim.rows("Ticket_User", tickets_id=1, type=1)
        if actor["users_id"]
    ]
    assert row["4"] == (requesters[0] if len(requesters) == 1 else requesters)


def test_search_criteria_links_status_and_paging(api, glpi_sim):
    live = [row for row in glpi_sim.rows("Ticket") if not row["is_deleted"]]
    open_ids = sorted(row["id"] for row in live if row["status"] in (1, 2, 3, 4))
    body = search(api, **criterion(0, 12, "equals", "notold"), sort=2, range="0-999").json()
    assert [row["2"] for row in body["data"]] == open_ids
    either = search(api, **criterion(0, 2, "equals", 3), **criterion(1, 2, "equals", 5, link="OR"), sort=2).json()
    assert [row["2"] for row in either["data"]] == [3, 5]
    page = search(api, sort=2, range="0-4")
    assert (page.status_code, page.headers["Content-Range"], page.json()["count"]) == (206, f"0-4/{len(live)}", 5)
    assert search(api, **criterion(0, 9999, "equals", 1)).json()[0] == "ERROR"


def test_search_sees_entity_completenames_encoded(api):
    body = search(api, **criterion(0, 80, "contains", "Paris"), range="0-99").json()
    assert body["data"] and {row["80"] for row in body["data"]} == {"Root entity &#62; Paris"}


# --- writes and GLPI's business rules -------------------------------------------------------------------------


def test_text_is_returned_encoded_and_raw_input_is_encoded_exactly_once(api, glpi_sim):
    created = api.post("/Ticket", {"name": "VPN & Wi-Fi <down>", "content": "<p>Since 8:00 & nothing</p>"})
    assert created.status_code == 201
    ticket_id = created.json()["id"]
    assert created.json() == {"id": ticket_id, "message": ""}
    assert created.headers["Location"] == f"{glpi_sim.url}/Ticket/{ticket_id}"
    row = api.get(f"/Ticket/{ticket_id}").json()
    assert row["name"] == "VPN &#38; Wi-Fi &#60;down&#62;"
    assert row["content"] == "&#60;p&#62;Since 8:00 &#38; nothing&#60;/p&#62;"
    # Writing back what was read does not encode it again (GLPI keeps input that is already encoded).
    assert api.put(f"/Ticket/{ticket_id}", {"name": row["name"]}).status_code == 200
    assert api.get(f"/Ticket/{ticket_id}").json()["name"] == "VPN &#38; Wi-Fi &#60;down&#62;"
    assert glpi_sim.ticket(ticket_id, decoded=True)["name"] == "VPN & Wi-Fi <down>"
    assert encode_html(encode_html("a < b")) == encode_html("a < b")


def test_a_requesters_followup_reopens_a_solved_ticket(clocked):
    sim, clock = clocked
    hub = sim.user_id("itsm-hub")
    client = Api(sim)
    ticket = client.post(
        "/Ticket",
        {"name": "Printer", "content": "jam", "_users_id_requester": hub, "_users_id_assign": sim.user_id("tech")},
    ).json()["id"]
    assert sim.ticket(ticket)["status"] == 2
    clock.advance(60)
    sim.add_solution(ticket, "Replaced the toner", user="tech")
    solved = sim.ticket(ticket)
    assert (solved["status"], solved["solvedate"], solved["users_id_lastupdater"]) == (
        5,
        clock.glpi(),
        sim.user_id("tech"),
    )
    clock.advance(60)
    answer = client.post("/ITILFollowup", {"itemtype": "Ticket", "items_id": ticket, "content": "Still broken"})
    assert answer.status_code == 201
    reopened = sim.ticket(ticket)
    assert reopened["status"] == 2  # a technician is assigned: back to Processing (assigned)
    assert (reopened["date_mod"], reopened["users_id_lastupdater"]) == (clock.glpi(), hub)
    assert reopened["solvedate"] is None
    assert [s["status"] for s in sim.rows("ITILSolution", items_id=ticket, itemtype="Ticket")] == [4]  # refused


def test_a_technicians_followup_does_not_reopen_and_a_closed_ticket_takes_none(clocked):
    sim, clock = clocked
    ticket = sim.add_ticket("Laptop", requester="normal", assign="tech")
    sim.add_solution(ticket, "Fixed")
    clock.advance(30)
    Api(sim, TECH_USER_TOKEN).post("/ITILFollowup", {"itemtype": "Ticket", "items_id": ticket, "content": "FYI"})
    assert (sim.ticket(ticket)["status"], sim.ticket(ticket)["date_mod"]) == (5, clock.glpi())
    sim.set_status(ticket, 6)
    refused = Api(sim).post("/ITILFollowup", {"itemtype": "Ticket", "items_id": ticket, "content": "hello?"})
    assert (refused.status_code, refused.json()[0]) == (400, "ERROR_GLPI_ADD")


def test_a_solution_is_refused_on_a_solved_ticket(api, glpi_sim):
    ticket = glpi_sim.add_ticket("Mail", assign="tech")
    first = api.post("/ITILSolution", {"itemtype": "Ticket", "items_id": ticket, "content": "<p>Fixed</p>"})
    assert first.status_code == 201 and glpi_sim.ticket(ticket)["status"] == 5
    second = api.post("/ITILSolution", {"itemtype": "Ticket", "items_id": ticket, "content": "<p>Again</p>"})
    assert second.status_code == 400
    assert second.json() == [
        "ERROR_GLPI_ADD",
        "The item is already solved, did anyone pushed a solution before you?",
    ]


def test_an_empty_followup_is_refused(api, glpi_sim):
    ticket = glpi_sim.add_ticket("Empty")
    refused = api.post("/ITILFollowup", {"itemtype": "Ticket", "items_id": ticket, "content": ""})
    assert refused.json() == ["ERROR_GLPI_ADD", "You can't add a followup without description"]


def test_assigning_a_technician_moves_a_new_ticket_to_processing(clocked):
    sim, clock = clocked
    ticket = sim.add_ticket("New one", requester="normal")
    assert sim.ticket(ticket)["status"] == 1
    clock.advance(120)
    client = Api(sim)
    added = client.post("/Ticket_User", {"tickets_id": ticket, "users_id": sim.user_id("tech"), "type": 2})
    assert added.status_code == 201
    after = sim.ticket(ticket)
    assert (after["status"], after["date_mod"], after["takeintoaccountdate"]) == (2, clock.glpi(), clock.glpi())
    duplicate = client.post("/Ticket_User", {"tickets_id": ticket, "users_id": sim.user_id("tech"), "type": 2})
    assert duplicate.status_code == 400
    # Removing the last assignee puts an open ticket back to New.
    client.delete(f"/Ticket_User/{added.json()['id']}")
    assert sim.ticket(ticket)["status"] == 1


def test_actors_on_update_replace_every_role_even_those_left_out(api, glpi_sim):
    ticket = glpi_sim.add_ticket("Actors", requester="normal", assign="tech")
    glpi_sim.add_actor(ticket, 3, login="post-only")
    glpi_id = glpi_sim.user_id("glpi")
    response = api.put(f"/Ticket/{ticket}", {"_actors": {"assign": [{"itemtype": "User", "items_id": glpi_id}]}})
    assert response.json() == [{str(ticket): True, "message": ""}]
    actors = {(row["users_id"], row["type"]) for row in glpi_sim.rows("Ticket_User", tickets_id=ticket)}
    assert actors == {(glpi_id, 2)}  # the requester and the observer were dropped: their roles were left out


def test_status_changes_stamp_and_clear_dates(clocked):
    sim, clock = clocked
    client = Api(sim)
    ticket = sim.add_ticket("Dates", assign="tech")
    clock.advance(10)
    client.put(f"/Ticket/{ticket}", {"status": 6})
    closed = sim.ticket(ticket)
    assert (closed["solvedate"], closed["closedate"]) == (clock.glpi(), clock.glpi())
    clock.advance(10)
    client.put(f"/Ticket/{ticket}", {"status": 2})
    reopened = sim.ticket(ticket)
    assert (reopened["solvedate"], reopened["closedate"], reopened["date_mod"]) == (None, None, clock.glpi())


def test_an_identical_update_changes_nothing_but_answers_true(clocked):
    sim, clock = clocked
    ticket = sim.add_ticket("Same", urgency=4)
    before = sim.ticket(ticket)
    clock.advance(100)
    response = Api(sim).put(f"/Ticket/{ticket}", {"urgency": 4, "name": "Same"})
    assert response.json() == [{str(ticket): True, "message": ""}]
    assert sim.ticket(ticket) == before


def test_changing_urgency_recomputes_priority(api, glpi_sim):
    ticket = glpi_sim.add_ticket("Urgent", urgency=3, impact=3)
    api.put(f"/Ticket/{ticket}", {"urgency": 5, "priority": 1})  # a changed urgency always wins
    assert glpi_sim.ticket(ticket)["priority"] == 4


def test_bulk_writes_and_their_partial_failures(api, glpi_sim):
    ticket = glpi_sim.add_ticket("Bulk")
    many = api.post("/ITILFollowup", [{"itemtype": "Ticket", "items_id": ticket, "content": f"n{n}"} for n in (1, 2)])
    assert many.status_code == 201 and [row["message"] for row in many.json()] == ["", ""]
    partial = api.post(
        "/ITILFollowup",
        [
            {"itemtype": "Ticket", "items_id": ticket, "content": "ok"},
            {"itemtype": "Ticket", "items_id": ticket, "content": ""},
        ],
    )
    assert partial.status_code == 207
    code, results = partial.json()
    assert code == "ERROR_GLPI_PARTIAL_ADD" and results[1] == {
        "id": False,
        "message": "You can't add a followup without description",
    }
    missing = api.put("/Ticket/99999", {"name": "x"})
    assert missing.status_code == 400 and missing.json()[0] == "ERROR_GLPI_UPDATE"
    assert api.http.post("/Ticket", json={"nothing": 1}).json()[0] == "ERROR_BAD_ARRAY"


def test_trash_then_purge(fresh_glpi_sim):
    client = Api(fresh_glpi_sim)
    ticket = next(row["id"] for row in fresh_glpi_sim.rows("Ticket") if not row["is_deleted"])
    assert fresh_glpi_sim.followups(ticket) or fresh_glpi_sim.add_followup(ticket, "so it has one")
    trashed = client.delete(f"/Ticket/{ticket}")
    assert (trashed.status_code, trashed.json()) == (200, [{str(ticket): True, "message": ""}])
    assert client.get(f"/Ticket/{ticket}").json()["is_deleted"] == 1
    assert client.get(f"/Ticket/{ticket}/ITILFollowup").status_code == 200
    purged = client.delete(f"/Ticket/{ticket}", force_purge="true")
    assert purged.status_code == 200
    assert client.get(f"/Ticket/{ticket}").status_code == 404
    assert fresh_glpi_sim.followups(ticket) == []
    again = client.delete(f"/Ticket/{ticket}")
    assert again.json() == ["ERROR_GLPI_DELETE", "Item not found"]


def test_a_documents_file_comes_with_its_type_its_name_and_its_content_length(fresh_glpi_sim):
    sim = fresh_glpi_sim
    client = Api(sim)
    ticket = sim.add_ticket("A crash with its dump")
    content = b"PK\x03\x04" + bytes(5000)
    document = sim.add_document(ticket, "core dump & logs.zip", content, mime="application/zip")
    file = client.http.get(f"/Document/{document}", headers={"Accept": "application/octet-stream"})
    assert (file.status_code, file.content) == (200, content)
    assert file.headers["Content-Length"] == "5004"  # as GLPI's Toolbox::sendFile: a client can refuse it unread
    assert file.headers["Content-Type"] == "application/zip"
    assert file.headers["Content-Disposition"] == "attachment; filename*=UTF-8''core%20dump%20%26%20logs.zip"
    row = client.get(f"/Document/{document}").json()  # without the Accept header: the row
    assert row["filename"] == "core dump &#38; logs.zip" and row["sha1sum"] == hashlib.sha1(content).hexdigest()
    assert [link["documents_id"] for link in client.get(f"/Ticket/{ticket}/Document_Item").json()] == [document]
    generated = next(link["documents_id"] for link in sim.rows("Document_Item") if link["documents_id"] != document)
    file = client.http.get(f"/Document/{generated}", headers={"Accept": "application/octet-stream"})
    assert file.content.startswith(b"Simulated content of ") and file.headers["Content-Length"] == str(
        len(file.content)
    )


# --- fault injection ------------------------------------------------------------------------------------------


def test_injected_faults_answer_instead_of_glpi_then_stop(fresh_glpi_sim):
    sim = fresh_glpi_sim
    client = Api(sim)
    sim.fail_next("GET", r"^/Ticket\?", 429, headers={"Retry-After": "1"}, times=2)
    sim.fail_next("GET", r"^/search/Ticket", 500)
    sim.fail_next("*", r"^/Ticket/2$", 502, body="<html><body><h1>502 Bad Gateway</h1></body></html>")
    first, second, third = (client.get("/Ticket", range="0-1") for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 206]
    assert first.headers["Retry-After"] == "1"
    failed_search = client.get("/search/Ticket")
    assert (failed_search.status_code, failed_search.json()[0]) == (500, "ERROR_SQL")
    proxy = client.get("/Ticket/2")
    assert proxy.status_code == 502 and proxy.headers["content-type"].startswith("text/html")
    assert client.get("/Ticket/2").status_code == 200
    assert [status for method, path, status in sim.requests if path.startswith("/Ticket?")] == [429, 429, 206]


def test_an_injected_delay_holds_the_answer(fresh_glpi_sim):
    fresh_glpi_sim.fail_next("GET", r"^/Ticket/1$", None, delay=0.5)
    client = Api(fresh_glpi_sim)
    started = time.monotonic()
    assert client.get("/Ticket/1").status_code == 200
    assert time.monotonic() - started >= 0.5
    with pytest.raises(httpx.ReadTimeout):
        fresh_glpi_sim.fail_next("GET", r"^/Ticket/1$", None, delay=1)
        client.http.get("/Ticket/1", timeout=0.2)


# --- generated data -------------------------------------------------------------------------------------------


def test_generation_is_deterministic_by_seed():
    first = GlpiSimulator(tickets=60, seed=11, anchor=ANCHOR)
    second = GlpiSimulator(tickets=60, seed=11, anchor=ANCHOR)
    other = GlpiSimulator(tickets=60, seed=12, anchor=ANCHOR)
    assert first.rows("Ticket") == second.rows("Ticket")
    assert first.rows("ITILFollowup") == second.rows("ITILFollowup")
    assert first.rows("Ticket") != other.rows("Ticket")


def test_generated_data_looks_like_a_real_helpdesk():
    started = time.perf_counter()
    sim = GlpiSimulator(tickets=2000, seed=1, anchor=ANCHOR)
    elapsed = time.perf_counter() - started
    print(f"generated 2000 tickets in {elapsed:.2f} s")
    tickets = sim.rows("Ticket")
    assert [row["id"] for row in tickets] == list(range(1, 2001))
    assert all(row["date_mod"] >= row["date"] for row in tickets)
    assert max(row["date_mod"] for row in tickets) <= ANCHOR.astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")
    assert min(row["date"] for row in tickets) < "2024-08-01"  # spread over about two years
    statuses = Counter(row["status"] for row in tickets)
    assert set(statuses) == {1, 2, 3, 4, 5, 6} and statuses[6] > statuses[1]
    followups = sim.rows("ITILFollowup")
    per_ticket = Counter(row["items_id"] for row in followups)
    assert 1.2 < len(followups) / 2000 < 2.5 and max(per_ticket.values()) == 4
    assert any(row["is_private"] for row in followups)
    solved = {row["id"] for row in tickets if row["status"] in (5, 6)}
    assert solved <= {row["items_id"] for row in sim.rows("ITILSolution")}
    assert all(row["solvedate"] for row in tickets if row["status"] in (5, 6))
    assert all(row["closedate"] >= row["solvedate"] for row in tickets if row["status"] == 6)
    names = " ".join(row["name"] for row in tickets)
    assert all(word in names for word in ("Drucker", "Imprimante", "Drukarka", "Printer", "&#38;", "&#60;"))
    assert {row["type"] for row in sim.rows("Ticket_User")} == {1, 2, 3}
    assert sim.rows("Item_Ticket") and sim.rows("Document_Item") and sim.rows("Group_Ticket")


def test_malformed_tickets_are_damaged_like_real_bad_data():
    sim = GlpiSimulator(tickets=20, seed=2, malformed_ids=[3, 7, 11, 15], anchor=ANCHOR)
    damaged = [sim.ticket(ticket_id) for ticket_id in (3, 7, 11, 15)]
    assert damaged[0]["date"] == "0000-00-00 00:00:00"
    assert damaged[1]["status"] == 99
    assert damaged[2]["name"] is None
    assert damaged[3]["date_mod"] == "2025-02-30 25:61:00"
    assert len(MALFORMED_KINDS) == 4


def test_touch_changes_a_fraction_of_tickets_now(clocked):
    sim, clock = clocked
    clock.advance(3600)
    touched = sim.touch(0.5, seed=4)
    assert len(touched) == round(len([r for r in sim.rows("Ticket") if not r["is_deleted"]]) / 2)
    assert all(sim.ticket(ticket_id)["date_mod"] == clock.glpi() for ticket_id in touched)
    untouched = [row for row in sim.rows("Ticket") if row["id"] not in touched]
    assert all(row["date_mod"] < clock.glpi() for row in untouched)


# --- as a process ---------------------------------------------------------------------------------------------


def test_the_command_line_prints_the_url_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.glpi.simulator", "--tickets", "30", "--user-token", "bench=itsm-hub"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/apirest.php")
        login = httpx.get(f"{url}/initSession", headers={"Authorization": "user_token bench"})
        assert login.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


def test_the_control_option_touches_tickets_on_stdin_and_stops_at_end_of_input():
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.glpi.simulator", "--tickets", "30", "--seed", "2", "--control"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = process.stdout.readline().strip()
        api = httpx.Client(base_url=url, headers={"Authorization": f"user_token {HUB_USER_TOKEN}"})
        token = api.get("/initSession").json()["session_token"]
        api.headers["Session-Token"] = token
        newest = api.get("/Ticket", params={"sort": "date_mod", "order": "DESC", "range": "0-0"}).json()[0]

        process.stdin.write("touch 0.1 7\nfly away\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == '{"touched": 3}'
        assert "error" in process.stdout.readline()
        touched = api.get("/Ticket", params={"sort": "date_mod", "order": "DESC", "range": "0-2"}).json()
        assert all(row["date_mod"] > newest["date_mod"] for row in touched)
        api.close()
        process.stdin.close()
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_latency_delays_every_answer_and_concurrent_requests_wait_together():
    from concurrent.futures import ThreadPoolExecutor

    with GlpiSimulator(tickets=5, latency_ms=200) as sim:
        api = Api(sim)  # one request (initSession) already paid
        started = time.perf_counter()
        assert api.get("/Ticket/1").status_code == 200
        one = time.perf_counter() - started
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda n: api.get(f"/Ticket/{n}").status_code, range(1, 5)))
        four = time.perf_counter() - started
    assert statuses == [200] * 4
    assert 0.2 <= one < 0.6
    assert 0.2 <= four < 0.6, "four concurrent requests should take about one latency, not four"
    with pytest.raises(ValueError, match="0 or more"):
        GlpiSimulator(tickets=1, latency_ms=-1)
