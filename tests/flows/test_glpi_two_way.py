"""Both ways with a simulated GLPI over HTTP: what either side changes reaches the other once, and stays put."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from flows.cli import deadletters_replay
from itsm_core.store.outbox import depth
from itsm_core.store.tables import AuditEventRow, CommentRow, DeadLetterRow, OutboxRow
from simulators.glpi.simulator import GlpiSimulator
from tests.support.glpi import GlpiHub

ASSIGNED_ROLE, SOLVED = 2, 5


@pytest.fixture
def sim():
    with GlpiSimulator(tickets=12, seed=3) as sim:
        yield sim


def a_group(sim: GlpiSimulator) -> tuple[int, str]:
    group = next(row for row in sim.rows("Group", decoded=True) if row["is_assign"])
    return group["id"], group["completename"]


def test_changes_on_either_side_reach_the_other_exactly_once_and_nothing_bounces(sim, database_url, tmp_path):
    hub = GlpiHub.start(sim, database_url, tmp_path)
    requester = next(row["name"] for row in sim.rows("User") if row["name"] not in ("itsm-hub", "tech"))
    glpi_id = sim.add_ticket("VPN refuses every login", "<p>Since 9:00 &amp; still down</p>", requester=requester)
    hub.sync()
    ticket = hub.ticket(glpi_id)
    assert ticket["title"] == "VPN refuses every login" and ticket["description"] == "Since 9:00 & still down"
    assert ticket["status"] == "new"

    # The hub routes it and starts work: GLPI gets the group as assigned (type 2) and the status.
    group_id, group_name = a_group(sim)
    hub.change(glpi_id, assignment_group=group_name, status="in_progress")
    assert hub.push().sent == 1
    assert [(g["groups_id"], g["type"]) for g in sim.rows("Group_Ticket", tickets_id=glpi_id)] == [
        (group_id, ASSIGNED_ROLE)
    ]
    assert sim.ticket(glpi_id)["status"] == 3  # processing (planned): in_progress through the mapping

    # A comment in the hub becomes one followup in GLPI, and is not brought back as a new comment.
    hub.change(glpi_id, comment="We are restarting the VPN concentrator.")
    assert hub.push().sent == 1
    followups = sim.followups(glpi_id, decoded=True)
    assert len(followups) == 1 and "restarting the VPN concentrator" in followups[0]["content"]
    hub.sync()
    assert hub.comments(glpi_id) == ["We are restarting the VPN concentrator."]

    # A followup written in GLPI becomes one comment in the hub, and is not pushed back to GLPI.
    sim.add_followup(glpi_id, "<p>Works again for me, thanks</p>", user=requester)
    hub.sync()
    assert hub.comments(glpi_id)[-1] == "Works again for me, thanks"
    assert hub.push().sent == 0
    assert len(sim.followups(glpi_id)) == 2

    # Ten more cycles: nothing moves on either side.
    glpi_before = (sim.ticket(glpi_id), sim.followups(glpi_id), sim.rows("Group_Ticket", tickets_id=glpi_id))
    with hub.store.connect() as conn:
        events_before = conn.execute(select(AuditEventRow.__table__)).all()
    for _ in range(10):
        pulled, pushed = hub.cycle()
        assert pulled.created == pulled.updated == pulled.quarantined == 0
        assert pushed.handled == 0
    assert (sim.ticket(glpi_id), sim.followups(glpi_id), sim.rows("Group_Ticket", tickets_id=glpi_id)) == glpi_before
    with hub.store.connect() as conn:
        assert conn.execute(select(AuditEventRow.__table__)).all() == events_before
        assert depth(conn) == 0
    assert hub.comments(glpi_id) == ["We are restarting the VPN concentrator.", "Works again for me, thanks"]


def test_a_solution_from_the_hub_solves_the_glpi_ticket_and_comes_back_as_an_echo(sim, database_url, tmp_path):
    hub = GlpiHub.start(sim, database_url, tmp_path)
    glpi_id = sim.add_ticket("Printer jams on tray 2")
    hub.sync()
    hub.change(glpi_id, status="resolved", comment="Solution:\nTray 2 roller replaced.")
    assert hub.push().sent == 2  # the solution, then the status (already solved by it)
    solutions = sim.rows("ITILSolution", decoded=True, items_id=glpi_id)
    assert len(solutions) == 1 and "Tray 2 roller replaced." in solutions[0]["content"]
    assert sim.ticket(glpi_id)["status"] == SOLVED
    pulled = hub.sync()
    assert pulled.updated == 0 or hub.ticket(glpi_id)["status"] == "resolved"
    assert hub.comments(glpi_id) == ["Solution:\nTray 2 roller replaced."]
    with hub.store.connect() as conn:
        conflicts = conn.execute(
            select(AuditEventRow.__table__).where(AuditEventRow.__table__.c.field.startswith("conflict:"))
        ).all()
    assert conflicts == []


def test_a_glpi_change_later_than_the_hubs_wins_and_the_conflict_is_audited(sim, database_url, tmp_path):
    hub = GlpiHub.start(sim, database_url, tmp_path)
    glpi_id = sim.add_ticket("Mailbox full")
    hub.sync()
    hub.change(glpi_id, urgency=1)  # the hub raises the urgency …
    time.sleep(1.05)  # GLPI's dates have whole seconds: a change in the same second as the hub's loses the tie
    sim.update("Ticket", glpi_id, urgency=1)  # … and a technician lowers it in GLPI afterwards (very low)
    hub.sync()
    assert hub.ticket(glpi_id)["urgency"] == 3
    audit = AuditEventRow.__table__
    with hub.store.connect() as conn:
        (event,) = conn.execute(select(audit).where(audit.c.field == "conflict:urgency")).mappings().all()
    assert (event["old_value"], event["new_value"], event["actor"]) == (1, 3, "conflict:upstream-kept")
    # The outbox still holds the hub's (older) change; pushing sends the current value, which is GLPI's own.
    assert hub.push().sent == 1
    assert sim.ticket(glpi_id)["urgency"] == 1


def test_a_push_glpi_refuses_becomes_a_dead_letter_and_the_rest_goes_on(sim, database_url, tmp_path):
    hub = GlpiHub.start(sim, database_url, tmp_path)
    first, second = sim.add_ticket("First"), sim.add_ticket("Second")
    hub.sync()
    hub.change(first, assignee="nobody-known@example.org")
    hub.change(second, comment="Looking into it")
    report = hub.push()
    assert (report.sent, report.refused, report.failed) == (1, 1, 0)
    with hub.store.connect() as conn:
        (letter,) = conn.execute(select(DeadLetterRow.__table__)).mappings().all()
        states = sorted(conn.execute(select(OutboxRow.__table__.c.state)).scalars())
    assert letter["stage"] == "push" and "nobody-known@example.org" in letter["reason"]
    assert states == ["dead", "sent"]
    assert len(sim.followups(second)) == 1

    # Fixed in the hub (a known assignee), the dead letter is replayed: queued again, sent with today's value.
    known = next(row for row in sim.rows("User") if row["name"] == "tech")
    hub.change(first, assignee="tech")
    deadletters_replay([letter["id"]], config=str(tmp_path / "itsm.yaml"))
    assert hub.push().sent == 2  # the replayed item and the fix, both with the ticket's current assignee
    assigned = [row["users_id"] for row in sim.rows("Ticket_User", tickets_id=first) if row["type"] == ASSIGNED_ROLE]
    assert assigned == [known["id"]]


def test_glpi_down_keeps_the_outbox_for_the_next_push(sim, database_url, tmp_path):
    hub = GlpiHub.start(sim, database_url, tmp_path, retry_attempts=2)
    glpi_id = sim.add_ticket("Laptop will not boot")
    hub.sync()
    hub.change(glpi_id, comment="Bring it to the desk")
    sim.fail_next("POST", r"^/ITILFollowup", 503, times=20)
    report = hub.push()
    assert (report.sent, report.failed) == (0, 1)
    sim.clear_faults()
    with hub.store.connect() as conn:
        conn.execute(OutboxRow.__table__.update().values(next_attempt_at=OutboxRow.__table__.c.created_at))
        conn.commit()
    assert hub.push().sent == 1
    assert len(sim.followups(glpi_id)) == 1
    assert hub.count(CommentRow.__table__) >= 1


def test_a_ticket_reopened_in_glpi_is_reopened_in_the_hub_not_quarantined(sim, database_url, tmp_path):
    hub = GlpiHub.start(sim, database_url, tmp_path)
    requester = next(row["name"] for row in sim.rows("User") if row["name"] not in ("itsm-hub", "tech"))
    glpi_id = sim.add_ticket("Printer jams on tray 2", requester=requester)
    sim.add_actor(glpi_id, ASSIGNED_ROLE, login="tech")
    sim.add_solution(glpi_id, "Roller replaced", user="tech")
    hub.sync()
    solved = hub.ticket(glpi_id)
    assert solved["status"] == "resolved" and solved["resolved_at"] is not None

    sim.add_followup(glpi_id, "<p>Still jams</p>", user=requester)  # GLPI reopens it: back to Processing (assigned)
    assert sim.ticket(glpi_id)["status"] == 2
    pulled = hub.sync()
    assert pulled.quarantined == 0 and pulled.updated == 1
    reopened = hub.ticket(glpi_id)
    assert reopened["status"] == "assigned" and reopened["resolved_at"] is None
    assert hub.comments(glpi_id)[-1] == "Still jams"
    with hub.store.connect() as conn:
        assert conn.execute(select(DeadLetterRow.id)).all() == []
