"""Ownership, the later-timestamp rule and echo suppression, on a real store (SQLite and PostgreSQL)."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from itsm_core.models import Ticket
from itsm_core.store.tables import PushedValueRow
from itsm_core.store.tickets import TicketWrite, get_ticket, upsert_tickets
from itsm_core.sync.conflicts import FieldPolicy, remember_pushed

NOW = datetime.now(UTC)
T0 = NOW - timedelta(days=2)
BEFORE_HUB, AFTER_HUB = NOW - timedelta(hours=1), NOW + timedelta(hours=1)  # upstream times around the hub's
FIELDS = frozenset({"title", "assignee", "assignment_group", "status", "updated_at"})
POLICY = FieldPolicy({"title": "source", "assignment_group": "hub"})


def write(store, *, at, policy=POLICY, system="glpi", actor="source:glpi", **values):
    ticket = Ticket.model_validate(
        {"source_type": "glpi", "title": "Printer", "created_at": T0, "updated_at": at, **values}
    )
    with store.transaction() as conn:
        (result,) = upsert_tickets(conn, system, actor, [TicketWrite("Ticket/1", ticket, str(at), FIELDS)], policy)
    return result


def hub_sets(store, **values):
    """A person or a rule changes the ticket in the hub, now (another actor than the source)."""
    write(store, at=NOW, policy=None, actor="user:ops", **values)


def ticket(store):
    with store.connect() as conn:
        return get_ticket(conn, 1)


def conflicts(store):
    return [
        (e["field"], e["old_value"], e["new_value"], e["actor"])
        for e in ticket(store)["audit"]
        if "conflict" in e["field"]
    ]


def test_a_source_owned_field_always_takes_the_upstream_value(store):
    write(store, at=T0, assignee="ann")
    hub_sets(store, title="Printer (hub)")
    write(store, at=BEFORE_HUB, title="Printer on floor 2")  # older than the hub's change, still wins
    assert ticket(store)["title"] == "Printer on floor 2"


def test_a_hub_owned_field_keeps_the_hub_value_records_both_and_asks_to_push_again(store):
    write(store, at=T0, assignment_group="Network")
    hub_sets(store, assignment_group="Service Desk")
    result = write(store, at=AFTER_HUB, assignment_group="Printers")  # later, yet the hub owns the field
    assert ticket(store)["assignment_group"] == "Service Desk"
    assert result.repush == ["assignment_group"] and result.changed == ["updated_at"]
    assert conflicts(store) == [("conflict:assignment_group", "Service Desk", "Printers", "conflict:hub-kept")]


def test_a_hub_owned_field_the_hub_never_set_takes_the_upstream_value(store):
    write(store, at=T0)
    write(store, at=AFTER_HUB, assignment_group="Printers")
    assert ticket(store)["assignment_group"] == "Printers" and conflicts(store) == []


def test_a_shared_field_takes_the_later_change_either_way(store):
    write(store, at=T0, assignee="ann")
    hub_sets(store, assignee="bob")
    older = write(store, at=BEFORE_HUB, assignee="carl")  # GLPI's change came before the hub's
    assert ticket(store)["assignee"] == "bob" and older.repush == ["assignee"]
    newer = write(store, at=AFTER_HUB, assignee="dora")  # GLPI's change came after
    assert ticket(store)["assignee"] == "dora" and newer.changed == ["assignee", "updated_at"]
    assert [c[3] for c in conflicts(store)] == ["conflict:hub-kept", "conflict:upstream-kept"]


def test_the_hubs_own_push_coming_back_is_an_echo_not_a_change(store):
    write(store, at=T0, assignee="ann")
    hub_sets(store, assignee="bob")
    with store.transaction() as conn:
        remember_pushed(conn, "glpi", [(1, "assignee", "bob")], NOW)
    hub_sets(store, assignee="carl")  # the hub moved on before GLPI reported back
    result = write(store, at=AFTER_HUB, assignee="bob")  # GLPI reports what the hub pushed, later
    assert ticket(store)["assignee"] == "carl" and "assignee" not in result.changed and result.repush == []
    assert conflicts(store) == []


def test_an_upstream_value_other_than_the_pushed_one_clears_the_echo_memory(store):
    write(store, at=T0, assignee="ann")
    with store.transaction() as conn:
        remember_pushed(conn, "glpi", [(1, "assignee", "bob")], T0)
    write(store, at=AFTER_HUB, assignee="erin")  # someone in GLPI chose another assignee
    assert ticket(store)["assignee"] == "erin"
    with store.connect() as conn:
        assert conn.execute(select(PushedValueRow.field)).all() == []


def test_without_a_policy_the_source_simply_wins(store):
    write(store, at=T0, assignment_group="Network", policy=None)
    hub_sets(store, assignment_group="Service Desk")
    write(store, at=BEFORE_HUB, assignment_group="Printers", policy=None)
    assert ticket(store)["assignment_group"] == "Printers"
