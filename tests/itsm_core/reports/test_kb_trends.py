"""kb_trends on planted clusters (both databases): three themes written in varied words — VPN drops, printer jams,
forgotten passwords — among tickets about nothing in common, in November 2026 (Paris) and the 30 days before it.

Planted, per theme: (resolved in November, resolved in the 30 days before) and whether its solutions are alike:
VPN 8 and 2 (growth 300 %), same fix; passwords 6 and 0 (new), same fix; printers 6 and 6 (growth 0 %), each fixed
another way. Expected rank: VPN (most tickets), passwords (as many as printers, but new: it grows the most), printers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert

from itsm_core.reports import queries
from itsm_core.reports.period import between
from itsm_core.reports.queries import KB_COLUMNS, kb_trends
from itsm_core.reports.spec import ReportFilters
from itsm_core.rules.model import TextModel
from itsm_core.store.tables import CommentRow, TicketRow

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
NOVEMBER = between(date(2026, 11, 1), date(2026, 11, 30), "Europe/Paris")
IN_NOVEMBER = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)
BEFORE = datetime(2026, 10, 15, 9, 0, tzinfo=UTC)  # in [1 Oct 23:00 UTC, 31 Oct 23:00 UTC): the 30 days before

VPN = [
    ("VPN keeps disconnecting", "The VPN connection drops every few minutes when working from home."),
    ("Cannot connect to VPN from home", "VPN client says connection failed, home internet works fine."),
    ("VPN connection drops every hour", "Working remotely, the VPN disconnects and I lose my session."),
    ("VPN client fails to connect", "Since this morning the VPN client cannot connect from home."),
    ("Remote VPN access not working", "No VPN connection possible from my home office."),
    ("VPN tunnel disconnects", "The VPN tunnel keeps disconnecting while I work from home."),
    ("Home office VPN connection lost", "Lost the VPN connection again, remote work impossible."),
    ("VPN drops after login", "VPN connects, then the connection drops after a minute at home."),
    ("VPN disconnects at home", "My VPN connection disconnects from home every morning."),
    ("VPN not connecting remotely", "Cannot get a VPN connection when working remotely."),
]
PASSWORDS = [
    ("Forgot my password", "I forgot my password and cannot log in to my account."),
    ("Password expired, cannot log in", "My password expired this morning, the login page refuses it."),
    ("Reset my password please", "Please reset my password, I cannot log in."),
    ("Account locked after wrong password", "Typed a wrong password too often, my account is locked, no login."),
    ("Password reset needed", "Need a password reset, the login says the password is wrong."),
    ("Cannot log in, password rejected", "The login rejects my password since the weekend, account locked."),
]
PRINTERS = [
    ("Printer on floor 2 jammed", "The printer on floor 2 has a paper jam and does not print."),
    ("Paper jam in the printer", "Paper is stuck in the printer tray, printing stopped."),
    ("Printer shows paper jam error", "The printer display shows a paper jam, nothing prints."),
    ("Cannot print, printer jammed", "The printer is jammed with paper, cannot print my documents."),
    ("Printer paper tray jam", "Paper jam in tray 2 of the printer, print jobs are waiting."),
    ("Printer jammed again", "Printer jammed again with paper, please fix the printer."),
]
NOISE = [
    ("Coffee machine broken", "The coffee machine in the kitchen leaks water."),
    ("New office chair", "Requesting an ergonomic chair for my desk."),
    ("Projector flickers", "Conference room projector image flickers during meetings."),
    ("Parking badge lost", "I lost my parking badge yesterday evening."),
    ("Monitor arm loose", "The arm holding my monitor wobbles and sags."),
    ("Calendar shows wrong time zone", "Invites appear one hour late in my agenda."),
    ("Plant needs water", "The lobby plant looks dry and sad."),
    ("Whiteboard markers empty", "All markers in room 4 are dried out."),
]
SAME_VPN_FIX = "Reinstalled the VPN client profile and reset the VPN certificate, connection stable."
SAME_PASSWORD_FIX = "Password reset through the self-service portal, account unlocked, user logged in."
PRINTER_FIXES = [
    "Removed the torn sheet from the fuser.",
    "Replaced tray 2 rollers.",
    "Cleaned the path sensor.",
    "Firmware update of the device.",
    "Swapped the toner cartridge.",
    "Told the user to use A4 paper.",
]

#: id: (title, description, resolved at, solution or None); ids 1-20 are November's themed tickets, 21-26 its noise,
#: 31-40 the 30 days before (2 VPN, 6 printers, 2 noise).
TICKETS: dict[int, tuple[str, str, datetime, str | None]] = {
    **{1 + i: (*VPN[i], IN_NOVEMBER, SAME_VPN_FIX) for i in range(8)},
    **{9 + i: (*PASSWORDS[i], IN_NOVEMBER, SAME_PASSWORD_FIX) for i in range(6)},
    **{15 + i: (*PRINTERS[i], IN_NOVEMBER, PRINTER_FIXES[i]) for i in range(6)},
    **{21 + i: (*NOISE[i], IN_NOVEMBER, None) for i in range(6)},
    **{31 + i: (*VPN[8 + i], BEFORE, SAME_VPN_FIX) for i in range(2)},
    **{33 + i: (*PRINTERS[i], BEFORE, PRINTER_FIXES[i]) for i in range(6)},
    **{39 + i: (*NOISE[6 + i], BEFORE, None) for i in range(2)},
}


@pytest.fixture
def hub(store):
    with store.transaction() as conn:
        for ticket_id, (title, description, resolved, solution) in TICKETS.items():
            conn.execute(insert(TicketRow.__table__).values(
                id=ticket_id, kind="incident", title=title, description=description, status="resolved",
                source_type="email", created_at=resolved - timedelta(hours=3), updated_at=resolved,
                resolved_at=resolved,
            ))  # fmt: skip
            comments = [("What error do you see exactly?", resolved - timedelta(hours=2))]
            if solution:
                comments.append((solution, resolved))
            comments.append(("Thanks!", resolved + timedelta(hours=1)))  # after the resolution: not its solution
            conn.execute(insert(CommentRow.__table__), [
                {"ticket_id": ticket_id, "public": True, "author": "desk", "body": body, "created_at": when}
                for body, when in comments
            ])  # fmt: skip
    return store


def ids(first: int, count: int) -> set[str]:
    return {f"T-{n:06d}" for n in range(first, first + count)}


def test_the_planted_clusters_are_found_ranked_and_their_solutions_told_apart(hub):
    with hub.connect() as conn:
        frame = kb_trends(conn, NOVEMBER, ReportFilters(), NOW)
    assert list(frame.columns) == KB_COLUMNS
    got = frame.to_dict("records")
    assert [(r["rank"], r["tickets"], r["previous_tickets"]) for r in got] == [(1, 8, 2), (2, 6, 0), (3, 6, 6)]
    assert [r["growth_pct"] for r in got[::2]] == [300.0, 0.0] and frame["growth_pct"].isna().tolist()[1]
    assert [r["shared_solution"] for r in got] == [True, True, False]
    vpn, passwords, printers = got
    assert "vpn" in vpn["top_terms"].split(", ") and "vpn" in vpn["cluster"]
    assert "password" in passwords["top_terms"].split(", ")
    assert "printer" in printers["top_terms"].split(", ")
    for row, members in ((vpn, ids(1, 8)), (passwords, ids(9, 6)), (printers, ids(15, 6))):
        examples = row["example_tickets"].split(", ")
        assert len(examples) == 3 and set(examples) <= members


def test_a_trained_classifiers_vectoriser_is_used_as_given(hub):
    """A classifier trained on the fixture's texts (labelled by theme): its word TF-IDF finds the same clusters."""
    texts = [f"{title} {description}" for title, description, _, _ in TICKETS.values()]
    labels = ["vpn" if "VPN" in text else "printer" if "rint" in text else "other" for text in texts]
    model = TextModel.train(texts, labels, folds=0)
    with hub.connect() as conn:
        frame = kb_trends(conn, NOVEMBER, ReportFilters(), NOW, vectorizer=model.word_vectorizer())
    assert list(zip(frame["tickets"], frame["previous_tickets"], strict=True)) == [(8, 2), (6, 0), (6, 6)]


def test_above_the_cap_a_sample_is_clustered_and_every_ticket_counted(hub, monkeypatch):
    """With a cap of 14, every second of November's 26 tickets (by id) is clustered: 4 VPN, 3 of each other theme,
    3 noise; every ticket is then placed, so the counts are those of the whole period."""
    monkeypatch.setattr(queries, "KB_CLUSTER_CAP", 14)
    with hub.connect() as conn:
        frame = kb_trends(conn, NOVEMBER, ReportFilters(), NOW)
    assert list(zip(frame["tickets"], frame["previous_tickets"], strict=True)) == [(8, 2), (6, 0), (6, 6)]


def test_too_few_tickets_give_an_empty_table_with_its_columns(hub):
    with hub.connect() as conn:
        frame = kb_trends(conn, between(date(2026, 6, 1), date(2026, 6, 30), "UTC"), ReportFilters(), NOW)
    assert frame.empty and list(frame.columns) == KB_COLUMNS
