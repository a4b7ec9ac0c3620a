"""Which changes become which alerts: events of a change, rule conditions, once per (rule, event, ticket, what
happened), and the per-ticket cap that stops a storm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from itsm_core.alerts.plan import AlertPlanner, events_of
from itsm_core.alerts.spec import AlertsConfig
from itsm_core.models import Ticket, utcnow
from itsm_core.store.tables import OutboxRow, TicketRow
from itsm_core.store.tickets import TicketWrite, upsert_tickets
from itsm_core.sync.propagate import Change

outbox = OutboxRow.__table__
tickets = TicketRow.__table__


def config(**extra: object) -> AlertsConfig:
    return AlertsConfig.model_validate({
        "channels": {"hook": {"type": "webhook", "url": "https://ops.example.org/h", "secret": "s"},
                     "chat": {"type": "slack", "url": "https://hooks.slack.com/services/x"}},
        "rules": [
            {"name": "new-p1", "events": ["ticket_created"], "when": {"field": "priority", "equals": 1},
             "channels": ["hook", "chat"]},
            {"name": "moves", "events": ["assigned", "status_changed", "priority_changed"], "channels": ["hook"]},
        ],
        **extra,
    })  # fmt: skip


def ticket(store, priority: int, opened: datetime | None = None, key: str = "") -> int:
    """A ticket opened an hour ago (or at `opened`)."""
    made = Ticket(title="Mail is down", source_type="webhook", priority=priority, requester="a@example.org",
                  created_at=opened or utcnow() - timedelta(hours=1))  # fmt: skip
    with store.transaction() as conn:
        writes = [TicketWrite(f"t{priority}{key}", made, "h", frozenset())]
        (result,) = upsert_tickets(conn, "hooks", "source:hooks", writes)
    return result.ticket_id


def queued(store) -> list[tuple[str, str, str]]:
    with store.connect() as conn:
        rows = conn.execute(select(outbox.c.target_system, outbox.c.fields).order_by(outbox.c.id)).all()
    return [(target, fields["rule"], fields["event"]) for target, fields in rows]


def test_events_of_a_change():
    assert events_of(Change(1, created=True)) == [("ticket_created", "")]
    moved = events_of(Change(1, frozenset({"assignee", "status", "title"})))
    assert [event for event, _ in moved] == ["assigned", "status_changed"]
    assert events_of(Change(1, frozenset({"title"}))) == []


def test_a_new_p1_goes_to_each_channel_once_and_a_p3_nowhere(store):
    planner = AlertPlanner(config())
    p1, p3 = ticket(store, 1), ticket(store, 3)
    for _ in range(2):  # the same change announced twice (a retried page): queued once
        with store.transaction() as conn:
            planner.announce(conn, [Change(p1, created=True), Change(p3, created=True)])
    assert queued(store) == [("alert:hook", "new-p1", "ticket_created"), ("alert:chat", "new-p1", "ticket_created")]


def test_a_storm_on_one_ticket_stops_at_the_hourly_cap(store, caplog):
    planner = AlertPlanner(config(max_per_ticket_per_hour=2))
    p3 = ticket(store, 3)
    with store.transaction() as conn:
        for priority in (2, 4, 1, 5):  # four different priority changes: four different alerts, two allowed
            conn.execute(update(tickets).where(tickets.c.id == p3).values(priority=priority))
            planner.announce(conn, [Change(p3, frozenset({"priority"}))])
    assert queued(store) == [("alert:hook", "moves", "priority_changed")] * 2
    assert caplog.text.count("1 alert(s) not sent: over max_per_ticket_per_hour (2)") == 2  # the 3rd and the 4th


def test_a_first_load_of_history_alerts_nothing_but_what_was_opened_within_max_ticket_age_hours(store):
    """Connecting a GLPI with years of tickets must not page anyone for each of them."""
    old = ticket(store, 1, opened=datetime(2025, 3, 1, 9, tzinfo=UTC), key="old")
    recent = ticket(store, 1, opened=utcnow() - timedelta(hours=23), key="recent")
    with store.transaction() as conn:
        AlertPlanner(config()).announce(conn, [Change(old, created=True), Change(recent, created=True)])
    with store.connect() as conn:
        alerted = set(conn.execute(select(outbox.c.ticket_id)).scalars())
    assert alerted == {recent}
    with store.transaction() as conn:  # null: every new ticket
        AlertPlanner(config(max_ticket_age_hours=None)).announce(conn, [Change(old, created=True)])
    with store.connect() as conn:
        assert set(conn.execute(select(outbox.c.ticket_id)).scalars()) == {old, recent}
