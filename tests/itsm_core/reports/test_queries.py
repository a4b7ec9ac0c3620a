"""The standard reports on a small hand-built store (both databases), against figures worked out by hand below.

November 2026 in Europe/Paris is [2026-10-31 23:00 UTC, 2026-11-30 23:00 UTC): a ticket at 23:30 UTC on 31 October
is a Paris ticket of 1 November, one at 23:30 UTC on 30 November belongs to December.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import insert

from itsm_core.reports.period import between, named
from itsm_core.reports.queries import (
    backlog,
    response_times,
    sla_compliance,
    sla_trend,
    sync_health,
    volumes,
    workload,
)
from itsm_core.reports.spec import ReportFilters
from itsm_core.store.tables import (
    DeadLetterRow,
    ExternalRefRow,
    InboundRecordRow,
    SlaClockRow,
    SyncStateRow,
    TicketRow,
)

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
NOVEMBER = between(date(2026, 11, 1), date(2026, 11, 30), "Europe/Paris")
ALL = ReportFilters()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


#: id: (created (UTC), status, priority, group, category, source type, source,
#:      clocks {metric: (policy, state, business hours used, calendar hours from start to stop if stopped)})
TICKETS = {
    1: ("2026-11-02 08:00", "resolved", 1, "net", "network", "email", "mail",
        {"resolution": ("p1", "met", 2, 5), "first_response": ("p1", "met", 0.5, 1)}),
    2: ("2026-11-30 23:30", "new", 3, "net", "network", "email", "mail", {}),  # Paris: 1 December
    3: ("2026-10-31 23:30", "in_progress", 2, "desk", "hardware", "glpi", "glpi",   # Paris: 1 November
        {"resolution": ("std", "running", 7, None), "first_response": ("std", "breached", 6, 48)}),
    4: ("2026-11-15 12:00", "pending", 1, "net", "network", "email", "mail",
        {"resolution": ("p1", "paused", 1, None)}),
    5: ("2026-09-01 09:00", "new", 4, None, None, "csv", "legacy", {}),
    6: ("2026-11-20 10:00", "resolved", 1, "net", "network", "glpi", "glpi",
        {"resolution": ("p1", "breached", 10, 30)}),
}  # fmt: skip


#: id: (assignee, resolved at (UTC)); the others have neither
ASSIGNED = {1: ("ana", "2026-11-02 13:00"), 6: ("ana", "2026-11-21 16:00"), 3: ("dan", None), 2: ("ben", None)}


@pytest.fixture
def hub(store):
    with store.transaction() as conn:
        for ticket_id, (created, status, priority, group, category, kind, system, metrics) in TICKETS.items():
            conn.execute(insert(TicketRow.__table__).values(
                id=ticket_id, kind="incident", title=f"ticket {ticket_id}", status=status, priority=priority,
                assignment_group=group, category=category, source_type=kind, created_at=at(created),
                updated_at=at(created), assignee=ASSIGNED.get(ticket_id, (None, None))[0],
                resolved_at=at(ASSIGNED[ticket_id][1]) if ASSIGNED.get(ticket_id, (None, None))[1] else None,
            ))  # fmt: skip
            conn.execute(insert(ExternalRefRow.__table__).values(
                system=system, external_id=str(ticket_id), ticket_id=ticket_id, created_at=NOW, updated_at=NOW
            ))  # fmt: skip
            for metric, (policy, state, used, calendar) in metrics.items():
                stopped = at(created) + timedelta(hours=calendar) if calendar is not None else None
                conn.execute(insert(SlaClockRow.__table__).values(
                    ticket_id=ticket_id, metric=metric, policy=policy, calendar="office", target_seconds=3600,
                    used_seconds=used * 3600, state=state, started_at=at(created), stopped_at=stopped, computed_at=NOW,
                ))  # fmt: skip
        conn.execute(insert(SyncStateRow.__table__), [
            {"source": "glpi", "entity": "tickets", "last_run_at": NOW, "last_success_at": at("2026-12-05 09:00"),
             "details": {}},
            {"source": "mail", "entity": "tickets", "last_run_at": NOW, "last_success_at": None, "details": {}},
        ])  # fmt: skip
        landed = [("glpi", "a", "created", "2026-11-03 10:00"), ("glpi", "b", "created", "2026-11-04 10:00"),
                  ("glpi", "c", "quarantined", "2026-11-05 10:00"), ("glpi", "d", "created", "2026-10-05 10:00"),
                  ("mail", "m", "updated", "2026-11-06 10:00")]  # fmt: skip
        conn.execute(insert(InboundRecordRow.__table__), [
            {"source": s, "external_id": e, "payload": b"{}", "payload_format": "json", "payload_hash": e,
             "received_at": at(when), "outcome": outcome} for s, e, outcome, when in landed
        ])  # fmt: skip
        conn.execute(insert(DeadLetterRow.__table__), [
            {"source": "glpi", "stage": "map", "payload": b"{}", "payload_format": "json", "reason": "bad",
             "created_at": NOW, "replayed_at": replayed} for replayed in (None, NOW)
        ])  # fmt: skip
    return store


def test_the_period_is_local_days_as_utc_instants():
    assert (NOVEMBER.start, NOVEMBER.end) == (at("2026-10-31 23:00"), at("2026-11-30 23:00"))
    previous = named("previous_month", "Europe/Paris", NOW)
    assert (previous.start, previous.end, previous.label) == (NOVEMBER.start, NOVEMBER.end, "2026-11")
    days = NOVEMBER.days()
    assert len(days) == 30 and days[0] == ("2026-11-01", at("2026-10-31 23:00"), at("2026-11-01 23:00"))
    unit, months = between(date(2026, 1, 15), date(2026, 12, 31), "Europe/Paris").buckets()
    assert unit == "month" and [m[0] for m in months][:2] == ["2026-01", "2026-02"] and len(months) == 12
    assert months[0][1] == at("2026-01-14 23:00") and months[2][1] == at("2026-02-28 23:00")
    week = named("previous_week", "Europe/Paris", NOW)  # Saturday 5 December: the week of 23-29 November
    assert (week.label, week.start) == ("2026-W48", at("2026-11-22 23:00"))


def rows(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_volumes_count_tickets_by_local_day_source_and_category(hub):
    with hub.connect() as conn:
        frame = volumes(conn, NOVEMBER, ALL, NOW)
    assert rows(frame) == [
        {"day": "2026-11-01", "source_type": "glpi", "category": "hardware", "created": 1},  # 23:30 UTC on 31 Oct
        {"day": "2026-11-02", "source_type": "email", "category": "network", "created": 1},
        {"day": "2026-11-15", "source_type": "email", "category": "network", "created": 1},
        {"day": "2026-11-20", "source_type": "glpi", "category": "network", "created": 1},
    ]  # ticket 2 (Paris: 1 December) and 5 (September) are not November's


def test_backlog_ages_the_open_tickets_at_the_period_end(hub):
    with hub.connect() as conn:
        frame = backlog(conn, NOVEMBER, ALL, NOW)
    got = {(r["priority"], r["group"]): (r["7-30d"], r["30d+"], r["open"]) for r in rows(frame)}
    # open: 3 (in progress, 29.98 days at the end), 4 (pending, 15.5 days), 5 (new, 90 days); 2 came after the end
    assert got == {("P1", "net"): (1, 0, 1), ("P2", "desk"): (1, 0, 1), ("P4", "(none)"): (0, 1, 1)}
    assert frame[["0-1d", "1-3d", "3-7d"]].to_numpy().sum() == 0


def test_sla_compliance_comes_from_the_engines_clocks_pauses_included(hub):
    with hub.connect() as conn:
        frame = sla_compliance(conn, NOVEMBER, ALL, NOW)
    got = {(r["metric"], r["policy"], r["priority"]): (r["met"], r["breached"], r["running"], r["paused"],
                                                        r["compliance_pct"]) for r in rows(frame)}  # fmt: skip
    assert got == {
        ("first_response", "p1", "P1"): (1, 0, 0, 0, 100.0),
        ("first_response", "std", "P2"): (0, 1, 0, 0, 0.0),
        ("resolution", "p1", "P1"): (1, 1, 0, 1, 50.0),  # 1 met, 6 breached, 4 paused (not ended: not counted)
        ("resolution", "std", "P2"): (0, 0, 1, 0, None),  # nothing ended yet
    }


def test_sla_trend_gives_the_compliance_of_each_local_day_from_the_ended_clocks(hub):
    with hub.connect() as conn:
        frame = sla_trend(conn, NOVEMBER, ALL, NOW)
    assert rows(frame) == [
        {"day": "2026-11-01", "metric": "first_response", "met": 0, "breached": 1, "compliance_pct": 0.0},  # 3
        {"day": "2026-11-02", "metric": "first_response", "met": 1, "breached": 0, "compliance_pct": 100.0},  # 1
        {"day": "2026-11-02", "metric": "resolution", "met": 1, "breached": 0, "compliance_pct": 100.0},  # 1
        {"day": "2026-11-20", "metric": "resolution", "met": 0, "breached": 1, "compliance_pct": 0.0},  # 6
    ]  # 3's resolution runs and 4's is paused: not ended, no day of theirs; 2 is a December ticket
    with hub.connect() as conn:
        quarter = sla_trend(conn, between(date(2026, 9, 1), date(2026, 12, 31), "Europe/Paris"), ALL, NOW)
    assert [(r["month"], r["metric"], r["met"], r["breached"]) for r in rows(quarter)] == [
        ("2026-11", "first_response", 1, 1),
        ("2026-11", "resolution", 1, 1),
    ]  # over 92 days: months, as in volumes


def test_sync_health_per_source(hub):
    with hub.connect() as conn:
        frame = sync_health(conn, NOVEMBER, ALL, NOW)
    glpi, mail = rows(frame)
    assert (glpi["source"], glpi["fetched"], glpi["created"], glpi["quarantined"]) == ("glpi", 3, 2, 1)
    assert (glpi["dead_letters_waiting"], glpi["lag_minutes"]) == (1, 60.0)  # the replayed letter does not wait
    assert (mail["fetched"], mail["updated"], mail["last_success_at"], mail["lag_minutes"]) == (1, 1, None, None)


def test_filters_keep_only_the_tickets_asked_for(hub):
    only_glpi = ReportFilters(sources=["glpi"])
    with hub.connect() as conn:
        assert volumes(conn, NOVEMBER, only_glpi, NOW)["created"].sum() == 2
        assert list(sync_health(conn, NOVEMBER, only_glpi, NOW)["source"]) == ["glpi"]
        network = ReportFilters(categories=["network"], groups=["net"])
        assert backlog(conn, NOVEMBER, network, NOW)["open"].sum() == 1


def test_response_times_in_business_and_calendar_hours(hub):
    with hub.connect() as conn:
        frame = response_times(conn, NOVEMBER, ALL, NOW)
    figures = ("tickets", "median_business_h", "p90_business_h", "median_calendar_h", "p90_calendar_h")
    got = {(r["measure"], r["priority"]): tuple(r[f] for f in figures) for r in rows(frame)}
    assert got == {
        ("MTTA", "P1"): (1, 0.5, 0.5, 1.0, 1.0),
        ("MTTA", "P2"): (1, 6.0, 6.0, 48.0, 48.0),  # breached, still counted: it stopped (2 Nov 23:30 UTC)
        ("MTTA", "all"): (2, 3.25, 5.45, 24.5, 43.3),
        ("MTTR", "P1"): (2, 6.0, 9.2, 17.5, 27.5),  # 1: 2 h of office time over 5 h; 6: 10 h over 30 h
        ("MTTR", "all"): (2, 6.0, 9.2, 17.5, 27.5),  # the running and the paused clocks have not stopped
    }


def test_workload_per_group_and_agent(hub):
    with hub.connect() as conn:
        frame = workload(conn, NOVEMBER, ALL, NOW)
    got = {(r["group"], r["agent"]): (r["open_now"], r["created_in_period"], r["resolved_in_period"])
           for r in rows(frame)}  # fmt: skip
    assert got == {
        ("net", "ana"): (0, 2, 2),  # 1 and 6, both created and resolved in November
        ("net", "ben"): (1, 0, 0),  # 2: a Paris ticket of 1 December
        ("net", "(none)"): (1, 1, 0),  # 4, pending
        ("desk", "dan"): (1, 1, 0),  # 3
        ("(none)", "(none)"): (1, 0, 0),  # 5, from September, still new
    }
