"""The GLPI simulator's indexed `/search` (sorted columns, bisection) answers exactly what the general path does.

Each search is sent twice over HTTP, once with `indexed_search` on and once forced off, and the two responses
(status, paging headers, body bytes) must be identical: on the generated data, on damaged rows, with an entity
restriction, and after every kind of write (add, update, trash, restore, purge, touch).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from simulators.glpi import simulator as glpi_simulator
from simulators.glpi.simulator import HUB_USER_TOKEN, GlpiSimulator


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def crit(field: int, searchtype: str, value: Any, index: int = 0, link: str | None = None) -> dict[str, Any]:
    found = {
        f"criteria[{index}][field]": field,
        f"criteria[{index}][searchtype]": searchtype,
        f"criteria[{index}][value]": value,
    }
    if link:
        found[f"criteria[{index}][link]"] = link
    return found


SYNC = {"forcedisplay[0]": 2, "forcedisplay[1]": 19}


@pytest.fixture
def sim() -> Iterator[tuple[GlpiSimulator, Clock]]:
    clock = Clock(datetime(2026, 7, 1, 8, 0, tzinfo=UTC))
    anchor = datetime(2026, 6, 1, tzinfo=UTC)
    with GlpiSimulator(tickets=80, seed=11, clock=clock, anchor=anchor, malformed_ids=(3, 4, 5, 6, 7, 8)) as glpi:
        yield glpi, clock


@pytest.fixture
def client(sim: tuple[GlpiSimulator, Clock]) -> Iterator[httpx.Client]:
    glpi, _ = sim
    http = httpx.Client(base_url=glpi.url, timeout=10)
    token = http.get("/initSession", headers={"Authorization": f"user_token {HUB_USER_TOKEN}"}).json()
    http.headers["Session-Token"] = token["session_token"]
    yield http
    http.close()


@pytest.fixture
def indexed_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per search run: whether the sorted indexes answered it."""
    calls: list[bool] = []
    original = glpi_simulator._SearchEngine._indexed

    def spy(self: Any, *args: Any) -> list[int] | None:
        found = original(self, *args)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(glpi_simulator._SearchEngine, "_indexed", spy)
    return calls


def date_mods(glpi: GlpiSimulator, deleted: int = 0) -> list[str]:
    return sorted(row["date_mod"] for row in glpi.rows("Ticket") if row["is_deleted"] == deleted and row["date_mod"])


def sync_searches(glpi: GlpiSimulator) -> list[tuple[str, dict[str, Any]]]:
    """The shapes the hub's GLPI sync sends (plan_pages, present_ids), at bounds taken from the data."""
    live, trash = date_mods(glpi), date_mods(glpi, 1) or ["2026-01-01 00:00:00"]
    ids = sorted(row["id"] for row in glpi.rows("Ticket"))
    searches: list[tuple[str, dict[str, Any]]] = []
    for deleted, dates in ((0, live), (1, trash)):
        for start, limit in ((0, 5), (3, 7), (0, 1000), (len(dates) - 2, 10)):
            common = {**SYNC, "sort": 19, "order": "ASC", "is_deleted": deleted}
            common["range"] = f"{max(0, start)}-{max(0, start) + limit - 1}"
            searches.append(("Ticket", {**crit(2, "contains", ""), **common}))
            for bound in (dates[0], dates[len(dates) // 2], dates[-1], "1999-01-01 00:00:00", "2999-01-01 00:00:00"):
                searches.append(("Ticket", {**crit(19, "morethan", bound), **common}))
        for last in (0, ids[len(ids) // 3], ids[-1]):
            searches.append(
                ("Ticket", {**crit(2, "contains", f">{last}"), "forcedisplay[0]": 2, "sort": 2, "order": "ASC",
                            "range": "0-9", "is_deleted": deleted})
            )  # fmt: skip
    return searches


def other_searches(glpi: GlpiSimulator) -> list[tuple[str, dict[str, Any]]]:
    """Neighbouring shapes: some answered from the indexes (bounds of every kind, NULLs, damaged values), the
    rest by the general path (two criteria, NOT, DESC, other sorts) — all must answer alike either way."""
    live = date_mods(glpi)
    middle, ids = live[len(live) // 2], sorted(row["id"] for row in glpi.rows("Ticket"))
    pivot = ids[len(ids) // 2]
    searches: list[dict[str, Any]] = [
        {},
        {"sort": 19},
        {"sort": 2, "range": "0-999"},
        {"sort": 19, "range": "0-999", "withindexes": 1, "uid_cols": 1},
        {**crit(19, "morethan", f"={middle}"), "sort": 19, "range": "0-999"},
        {**crit(19, "lessthan", middle), "sort": 19, "range": "0-999"},
        {**crit(19, "lessthan", f"={middle}"), "sort": 19, "range": "0-999"},
        {**crit(19, "morethan", middle[:10]), "sort": 19, "range": "0-999"},
        {**crit(19, "morethan", "-1"), "sort": 19, "range": "0-999"},
        {**crit(19, "morethan", f"{middle[8:10]}-{middle[5:7]}-{middle[:4]}"), "sort": 19, "range": "0-999"},
        {**crit(19, "contains", f">= {middle}"), "sort": 19, "range": "0-999"},
        {**crit(19, "contains", f"<{middle}"), "sort": 19, "range": "0-999"},
        {**crit(19, "contains", ""), "sort": 19, "range": "0-999"},
        {**crit(19, "contains", "2026"), "sort": 19, "range": "0-999"},
        {**crit(19, "morethan", middle), "sort": 19, "order": "DESC", "range": "0-999"},
        {**crit(19, "morethan", middle), "sort": 2, "range": "0-999"},
        {**crit(19, "morethan", middle), "sort": 1, "range": "0-999"},
        {**crit(19, "morethan", middle), **crit(12, "equals", "notold", 1), "sort": 19, "range": "0-999"},
        {**crit(19, "morethan", middle, link="AND NOT"), "sort": 19, "range": "0-999"},
        {**crit(19, "equals", middle[:10]), "sort": 19, "range": "0-999"},
        {**crit(2, "contains", f">={pivot}"), "sort": 2, "range": "0-999"},
        {**crit(2, "contains", f"&lt;{pivot}"), "sort": 2, "range": "0-999"},
        {**crit(2, "contains", f"<= {pivot}"), "sort": 2, "range": "0-999"},
        {**crit(2, "contains", str(pivot)), "sort": 2},
        {**crit(2, "morethan", str(pivot)), "sort": 2},
        {**crit(2, "morethan", "many"), "sort": 2},
        {**crit(2, "lessthan", f">{pivot}"), "sort": 2, "range": "0-999"},
        {**crit(2, "contains", "^"), "sort": 19, "range": "0-999"},
        {**crit(2, "contains", "NULL"), "sort": 19},
        {**crit(2, "contains", f">{pivot}"), "sort": 19, "range": "0-999"},
        {**crit(2, "notcontains", f">{pivot}"), "sort": 2, "range": "0-999"},
        {**crit(1, "contains", ""), "sort": 2, "range": "0-999"},
        {**crit(4, "contains", ""), "sort": 19, "range": "0-999"},
        {**crit(16, "morethan", "2026-01-01"), "sort": 16, "range": "0-999"},
        {"sort": 16, "range": "0-999"},
        {"sort": 15, "range": "0-999"},
        {**crit(15, "lessthan", "2000-01-01"), "sort": 15, "range": "0-999"},
        {**crit(10, "contains", ">2"), "sort": 10, "range": "0-999"},
        {**crit(12, "contains", "<5"), "sort": 12, "range": "0-999"},
        {**crit(19, "morethan", middle), "sort": 19, "range": "5000-5010"},
        {**crit(19, "morethan", "2999-01-01"), "sort": 19, "range": "0-9"},
    ]
    found = [("Ticket", search) for search in searches]
    found += [("Computer", {**crit(2, "contains", ""), "sort": 2, "range": "0-999"})]
    found += [("Computer", {**crit(19, "morethan", "2000-01-01"), "sort": 19, "range": "0-999", "is_deleted": 1})]
    found += [("ITILCategory", {**crit(2, "contains", ">2"), "sort": 2, "range": "0-999"})]
    return found


def answer(glpi: GlpiSimulator, http: httpx.Client, itemtype: str, params: dict[str, Any], indexed: bool) -> tuple:
    glpi.indexed_search = indexed
    response = http.get(f"/search/{itemtype}", params=params)
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("content-range", "accept-range")}
    return response.status_code, headers, response.content


def assert_alike(glpi: GlpiSimulator, http: httpx.Client, searches: list[tuple[str, dict[str, Any]]]) -> None:
    for itemtype, params in searches:
        general = answer(glpi, http, itemtype, params, indexed=False)
        indexed = answer(glpi, http, itemtype, params, indexed=True)
        assert indexed == general, (itemtype, params)
    glpi.indexed_search = True


def test_the_sync_searches_are_answered_from_the_indexes_alike(sim, client, indexed_calls):
    glpi, _ = sim
    searches = sync_searches(glpi)
    assert_alike(glpi, client, searches)
    assert indexed_calls.count(True) == len(searches)  # each indexed run answered by the indexes
    assert indexed_calls.count(False) == len(searches)  # each general run not


def test_other_shapes_answer_alike_with_or_without_the_indexes(sim, client, indexed_calls):
    glpi, _ = sim
    assert_alike(glpi, client, other_searches(glpi))
    assert indexed_calls.count(True) > 20  # many of the neighbouring shapes too


def test_an_entity_restriction_filters_the_indexed_answer_alike(sim, client):
    glpi, _ = sim
    assert client.post("/changeActiveEntities", json={"entities_id": 1, "is_recursive": True}).json() is True
    assert_alike(glpi, client, sync_searches(glpi) + other_searches(glpi))


def test_answers_stay_alike_after_every_kind_of_write(sim, client, indexed_calls):
    glpi, clock = sim
    live = [row["id"] for row in glpi.rows("Ticket") if not row["is_deleted"] and row["status"] != 6]  # not closed
    writes = [
        lambda: [glpi.add_ticket(f"same second {n}") for n in range(3)],  # ties on date_mod
        lambda: glpi.update("Ticket", live[0], urgency=5),
        lambda: glpi.add_followup(live[1], "<p>a followup moves date_mod</p>"),
        lambda: glpi.trash("Ticket", live[2]),
        lambda: glpi.restore("Ticket", live[2]),
        lambda: glpi.trash("Ticket", live[3]),
        lambda: glpi.purge("Ticket", live[4]),
        lambda: glpi.purge("Ticket", live[3]),
        lambda: glpi.malform(live[5], "impossible_date_mod"),
        lambda: glpi.touch(0.2, seed=5),
        lambda: glpi.update("Ticket", live[6], date_mod="2026-06-15 10:00:00"),  # back in time, and a tie
        lambda: glpi.update("Ticket", live[7], date_mod="2026-06-15 10:00:00"),
    ]
    assert_alike(glpi, client, sync_searches(glpi))  # the indexes are built before the writes
    for write in writes:
        clock.advance(1)
        write()
        assert_alike(glpi, client, sync_searches(glpi) + other_searches(glpi))
    assert indexed_calls.count(True) > len(writes) * len(sync_searches(glpi))


def test_mixed_value_types_fall_back_to_the_general_path(sim, client, indexed_calls):
    glpi, _ = sim
    ticket = next(row["id"] for row in glpi.rows("Ticket") if not row["is_deleted"])
    searches = [s for s in sync_searches(glpi) if s[1]["sort"] == 19 and s[1]["is_deleted"] == 0]  # live rows
    with glpi._lock:  # damage beyond what GLPI's columns allow: a number in date_mod
        glpi.data["Ticket"].update(ticket, {"date_mod": 20260101})
        glpi._model.version += 1
    assert_alike(glpi, client, searches)
    assert True not in indexed_calls


def test_a_touch_answers_the_lists_in_use_again_as_it_writes_and_they_read_as_if_computed_afresh(
    sim, client, monkeypatch
):
    glpi, clock = sim
    computed: list[str] = []
    original = glpi_simulator._Api._list_ids
    monkeypatch.setattr(
        glpi_simulator._Api, "_list_ids", lambda self, itemtype, *rest: computed.append(itemtype) or original(
            self, itemtype, *rest)
    )  # fmt: skip
    newest = {"sort": "date_mod", "order": "DESC", "range": "0-4", "searchText[itemtype]": "Ticket"}
    before = client.get("/ITILFollowup", params=newest).json()
    assert computed == ["ITILFollowup"]
    clock.advance(60)
    glpi.touch(0.3, seed=2)
    assert computed == ["ITILFollowup", "ITILFollowup"]  # answered again by the write, not by the next read
    after = client.get("/ITILFollowup", params=newest)
    assert computed == ["ITILFollowup", "ITILFollowup"]
    glpi._api._cache.clear()  # what a read computes from nothing
    assert client.get("/ITILFollowup", params=newest).content == after.content
    assert after.json() != before  # the touch's followups are the newest now
