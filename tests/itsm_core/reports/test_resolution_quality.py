"""reopen_rate and first_contact_resolution on a small hand-built audit trail (both databases), against figures
worked out by hand below.

November 2026 in Europe/Paris is [2026-10-31 23:00 UTC, 2026-11-30 23:00 UTC); reopens count for 14 days after the
first resolution.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert

from itsm_core.reports import queries
from itsm_core.reports.headline import headline
from itsm_core.reports.period import between
from itsm_core.reports.queries import first_contact_resolution, reopen_rate
from itsm_core.reports.spec import ReportFilters
from itsm_core.store.audit import audit_event
from itsm_core.store.tables import AuditEventRow, TicketRow
from tests.itsm_core.reports.test_queries import at, rows

NOW = datetime(2026, 12, 20, 10, 0, tzinfo=UTC)
NOVEMBER = between(date(2026, 11, 1), date(2026, 11, 30), "Europe/Paris")
ALL = ReportFilters()


#: id: (present priority, present group, source type, history [(when (UTC), field, old, new)]); the first status and
#: group are recorded with no old value, as the store records them when it creates a ticket.
TICKETS = {
    # resolved once, straight away: counted; first contact
    1: (1, "net", "email", [("2026-11-02 08:00", "status", None, "new"), ("2026-11-02 08:00", "assignment_group",
                                                                          None, "net"),
                            ("2026-11-02 10:00", "status", "new", "resolved")]),
    # reopened 5 days after its first resolution (on 5 Nov: its resolution of 11 Nov is not a first one)
    2: (1, "net", "email", [("2026-11-04 08:00", "status", None, "new"), ("2026-11-05 09:00", "status", "new",
                                                                          "resolved"),
                            ("2026-11-10 09:00", "status", "resolved", "in_progress"),
                            ("2026-11-11 09:00", "status", "in_progress", "resolved")]),
    # handed from desk to net before its resolution: not first contact (its first group, desk, is no transfer)
    3: (2, "net", "glpi", [("2026-11-03 08:00", "status", None, "new"), ("2026-11-03 09:00", "assignment_group", None,
                                                                         "desk"),
                           ("2026-11-06 09:00", "assignment_group", "desk", "net"),
                           ("2026-11-07 09:00", "status", "new", "resolved")]),
    # waited (pending) before its resolution: not first contact; resolved → closed is neither a reopen nor another
    # resolution
    4: (2, "desk", "glpi", [("2026-11-08 08:00", "status", None, "new"), ("2026-11-08 10:00", "status", "new",
                                                                          "pending"),
                            ("2026-11-09 08:00", "status", "pending", "in_progress"),
                            ("2026-11-09 10:00", "status", "in_progress", "resolved"),
                            ("2026-11-20 10:00", "status", "resolved", "closed")]),
    # reopened 20 days after: outside the window, so not a reopen; first contact
    5: (1, "net", "email", [("2026-11-10 08:00", "status", None, "new"), ("2026-11-10 09:00", "status", "new",
                                                                          "resolved"),
                            ("2026-11-30 09:00", "status", "resolved", "assigned")]),
    # first resolved in October: not November's, though reopened and resolved again in November
    6: (3, "net", "email", [("2026-10-20 08:00", "status", None, "new"), ("2026-10-25 08:00", "status", "new",
                                                                          "resolved"),
                            ("2026-11-02 08:00", "status", "resolved", "new"),
                            ("2026-11-04 08:00", "status", "new", "resolved")]),
    # resolved at 23:30 UTC on 30 November: a Paris ticket of 1 December
    7: (3, "net", "email", [("2026-11-30 20:00", "status", None, "new"), ("2026-11-30 23:30", "status", "new",
                                                                          "resolved")]),
    # closed at once at 23:30 UTC on 31 October (Paris: 1 November): closing is a resolution; first contact
    8: (3, "desk", "glpi", [("2026-10-31 23:00", "status", None, "new"), ("2026-10-31 23:00", "assignment_group",
                                                                          None, "desk"),
                            ("2026-10-31 23:30", "status", "new", "closed")]),
    # cancelled: never resolved
    9: (4, "desk", "glpi", [("2026-11-12 08:00", "status", None, "new"), ("2026-11-12 09:00", "status", "new",
                                                                          "cancelled")]),
}  # fmt: skip


@pytest.fixture
def hub(store):
    with store.transaction() as conn:
        for ticket_id, (priority, group, kind, history) in TICKETS.items():
            conn.execute(insert(TicketRow.__table__).values(
                id=ticket_id, kind="incident", title=f"ticket {ticket_id}", status=history[-1][3], priority=priority,
                assignment_group=group, source_type=kind, created_at=at(history[0][0]), updated_at=NOW,
            ))  # fmt: skip
            conn.execute(insert(AuditEventRow.__table__), [
                audit_event("ticket", ticket_id, field, old, new, "source:test", "test", at(when))
                for when, field, old, new in history
            ])  # fmt: skip
    return store


def test_reopen_rate_counts_first_resolutions_in_the_period_reopened_within_the_window(hub):
    with hub.connect() as conn:
        frame = reopen_rate(conn, NOVEMBER, ALL, NOW)
    # first resolutions in November: 1, 2, 5 (P1 net), 3 (P2, net now), 4 (P2 desk), 8 (P3 desk); reopened: 2 only
    assert rows(frame) == [
        {"priority": "P1", "group": "net", "resolved": 3, "reopened": 1, "reopen_rate_pct": 33.3},
        {"priority": "P2", "group": "desk", "resolved": 1, "reopened": 0, "reopen_rate_pct": 0.0},
        {"priority": "P2", "group": "net", "resolved": 1, "reopened": 0, "reopen_rate_pct": 0.0},
        {"priority": "P3", "group": "desk", "resolved": 1, "reopened": 0, "reopen_rate_pct": 0.0},
        {"priority": "all", "group": "all", "resolved": 6, "reopened": 1, "reopen_rate_pct": 16.7},
    ]


def test_first_contact_resolution_leaves_out_transfers_waits_and_reopens(hub):
    with hub.connect() as conn:
        frame = first_contact_resolution(conn, NOVEMBER, ALL, NOW)
    # at first contact: 1, 5 (net, email) and 8 (desk, glpi); not: 2 (reopened), 3 (transferred), 4 (pending)
    assert rows(frame) == [
        {"group": "desk", "source_type": "glpi", "resolved": 2, "first_contact": 1, "fcr_pct": 50.0},
        {"group": "net", "source_type": "email", "resolved": 3, "first_contact": 2, "fcr_pct": 66.7},
        {"group": "net", "source_type": "glpi", "resolved": 1, "first_contact": 0, "fcr_pct": 0.0},
        {"group": "all", "source_type": "all", "resolved": 6, "first_contact": 3, "fcr_pct": 50.0},
    ]


def test_the_reopen_window_is_measured_from_the_first_resolution(hub, monkeypatch):
    """Ticket 5 came back 20 days after: with the window at 21 days it is a reopen, and no longer first contact."""
    monkeypatch.setattr(queries, "REOPEN_WINDOW_DAYS", 21)
    with hub.connect() as conn:
        reopened = reopen_rate(conn, NOVEMBER, ALL, NOW)
        fcr = first_contact_resolution(conn, NOVEMBER, ALL, NOW)
    assert rows(reopened)[-1] == {"priority": "all", "group": "all", "resolved": 6, "reopened": 2,
                                  "reopen_rate_pct": 33.3}  # fmt: skip
    assert rows(fcr)[-1]["first_contact"] == 2


def test_filters_and_an_empty_period(hub):
    with hub.connect() as conn:
        desk = reopen_rate(conn, NOVEMBER, ReportFilters(groups=["desk"]), NOW)
        empty = first_contact_resolution(conn, between(date(2026, 6, 1), date(2026, 6, 30), "UTC"), ALL, NOW)
    assert [(r["priority"], r["resolved"]) for r in rows(desk)] == [("P2", 1), ("P3", 1), ("all", 2)]
    assert rows(empty) == [{"group": "all", "source_type": "all", "resolved": 0, "first_contact": 0, "fcr_pct": None}]


def test_the_headline_gives_both_rates_over_all_tickets(hub):
    with hub.connect() as conn:
        tables = {"reopen_rate": reopen_rate(conn, NOVEMBER, ALL, NOW),
                  "first_contact_resolution": first_contact_resolution(conn, NOVEMBER, ALL, NOW)}  # fmt: skip
        june = between(date(2026, 6, 1), date(2026, 6, 30), "UTC")
        nothing = {"reopen_rate": reopen_rate(conn, june, ALL, NOW)}
    assert headline(tables) == {"reopen rate": "16.7 %", "first-contact resolution": "50.0 %"}  # 1 of 6, 3 of 6
    assert headline(nothing) == {"reopen rate": "n/a"}
