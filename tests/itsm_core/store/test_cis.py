"""Configuration items in the store: the bulk upsert, relationships that follow an attribute, ticket links."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, func, select

from itsm_core.mapping import RelationshipSpec
from itsm_core.models import ConfigurationItem, Ticket
from itsm_core.store.cis import (
    CIWrite,
    ci_ids,
    get_ci,
    link_new_cis_to_tickets,
    link_tickets_to_cis,
    relate_new_cis,
    sync_relationships,
    upsert_cis,
)
from itsm_core.store.tables import AuditEventRow, CIRelationshipRow, ConfigurationItemRow, TicketCILinkRow
from itsm_core.store.tickets import TicketWrite, upsert_tickets

SYSTEM = "glpi"
ACTOR = "source:glpi"
INSTALLED_ON = RelationshipSpec(attribute="installed_software", rel_type="installed_on", direction="incoming")
AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def ci(name: str, **fields) -> ConfigurationItem:
    return ConfigurationItem(ci_class=fields.pop("ci_class", "computer"), name=name, **fields)


def write(external_id: str, item: ConfigurationItem, digest: str = "h1") -> CIWrite:
    return CIWrite(external_id, item, digest)


def count(conn, table) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar_one()


def events(conn, ci_id: int) -> list[tuple[str, object, object]]:
    audit = AuditEventRow.__table__
    query = select(audit.c.field, audit.c.old_value, audit.c.new_value).where(
        audit.c.entity == "ci", audit.c.entity_id == ci_id
    )
    return [tuple(row) for row in conn.execute(query.order_by(audit.c.id))]


def test_new_cis_are_created_in_a_few_statements_and_a_repeat_changes_nothing(store):
    items = [write(f"Computer/{n}", ci(f"PC-{n}", serial=f"S{n}", tenant="Root entity > Paris")) for n in range(300)]
    statements: list[str] = []
    with store.transaction() as conn:
        event.listen(conn, "before_cursor_execute", lambda *args: statements.append(args[2]))
        results = upsert_cis(conn, SYSTEM, ACTOR, items)
    assert [r.outcome for r in results] == ["created"] * 300
    if store.dialect == "postgresql":
        # lookup, INSERT … RETURNING, identities, audit: not one per CI. (SQLite gets one INSERT … RETURNING per
        # row from SQLAlchemy when the order of the returned ids must follow the rows, as for tickets.)
        assert len(statements) <= 5
    with store.transaction() as conn:
        again = upsert_cis(conn, SYSTEM, ACTOR, items)
        assert {r.outcome for r in again} == {"unchanged"}
        assert [r.ci_id for r in again] == [r.ci_id for r in results]
        assert count(conn, ConfigurationItemRow.__table__) == 300
        assert events(conn, results[0].ci_id) == [("status", None, "active")]
        assert ci_ids(conn, SYSTEM, ["Computer/7", "Computer/999"]) == {"Computer/7": results[7].ci_id}


def test_a_changed_ci_is_updated_with_an_audit_event_per_field_and_attributes_merge(store):
    first = ci("PC-1", serial="S1", attributes={"location": "Bâtiment A", "set_by_hub": "keep me"})
    with store.transaction() as conn:
        (created,) = upsert_cis(conn, SYSTEM, ACTOR, [write("Computer/1", first)])
    changed = ci("PC-1 (spare)", serial=None, status="retired", attributes={"location": None, "model": "T14"})
    with store.transaction() as conn:
        (result,) = upsert_cis(conn, SYSTEM, ACTOR, [write("Computer/1", changed, "h2")])
        row = get_ci(conn, SYSTEM, "Computer/1")
        trail = events(conn, created.ci_id)
    assert result.outcome == "updated" and result.ci_id == created.ci_id
    assert result.changed == ["name", "serial", "status", "attributes.location", "attributes.model"]
    assert row["name"] == "PC-1 (spare)" and row["serial"] is None and row["status"] == "retired"
    assert row["attributes"] == {"location": None, "model": "T14", "set_by_hub": "keep me"}
    assert ("status", "active", "retired") in trail and ("name", "PC-1", "PC-1 (spare)") in trail
    assert ("attributes.location", "Bâtiment A", None) in trail and ("attributes.model", None, "T14") in trail
    assert not any(field == "attributes.set_by_hub" for field, _, _ in trail)


def test_two_versions_of_one_ci_in_a_batch_apply_in_order(store):
    with store.transaction() as conn:
        results = upsert_cis(
            conn,
            SYSTEM,
            ACTOR,
            [
                write("Printer/3", ci("PRN", ci_class="printer")),
                write("Printer/3", ci("PRN-2", ci_class="printer"), "h2"),
            ],
        )
        assert [r.outcome for r in results] == ["created", "updated"]
        assert get_ci(conn, SYSTEM, "Printer/3")["name"] == "PRN-2"


def test_an_external_id_that_names_a_ticket_is_refused(store):
    ticket = Ticket(title="t", source_type="glpi", created_at=AT, updated_at=AT)
    with store.transaction() as conn:
        upsert_tickets(conn, SYSTEM, ACTOR, [TicketWrite("Computer/5", ticket, "x", frozenset())])
        (result,) = upsert_cis(conn, SYSTEM, ACTOR, [write("Computer/5", ci("PC-5"))])
    assert result.outcome == "quarantined" and "names a ticket" in result.error


def test_relationships_follow_the_attribute_and_wait_for_cis_not_known_yet(store):
    with store.transaction() as conn:
        sw1, sw2 = (
            r.ci_id
            for r in upsert_cis(
                conn,
                SYSTEM,
                ACTOR,
                [write(f"SoftwareVersion/{n}", ci(f"App {n}", ci_class="software")) for n in (1, 2)],
            )
        )
        attributes = {"installed_software": ["SoftwareVersion/1", "SoftwareVersion/2", "SoftwareVersion/3"]}
        (pc,) = upsert_cis(conn, SYSTEM, ACTOR, [write("Computer/1", ci("PC-1", attributes=attributes))])
        sync_relationships(conn, SYSTEM, INSTALLED_ON, {pc.ci_id: attributes["installed_software"]})
        assert get_ci(conn, SYSTEM, "Computer/1")["relationships"] == [
            (sw1, "installed_on", pc.ci_id),
            (sw2, "installed_on", pc.ci_id),
        ]
        # The third version lands later: the computer that listed it gets its edge.
        (sw3,) = upsert_cis(conn, SYSTEM, ACTOR, [write("SoftwareVersion/3", ci("App 3", ci_class="software"))])
        relate_new_cis(conn, SYSTEM, INSTALLED_ON, {"SoftwareVersion/3": sw3.ci_id})
        assert len(get_ci(conn, SYSTEM, "Computer/1")["relationships"]) == 3
        # Uninstalled: the edge goes; None (the source did not say) leaves the edges alone.
        sync_relationships(conn, SYSTEM, INSTALLED_ON, {pc.ci_id: ["SoftwareVersion/3"]})
        assert get_ci(conn, SYSTEM, "Computer/1")["relationships"] == [(sw3.ci_id, "installed_on", pc.ci_id)]
        sync_relationships(conn, SYSTEM, INSTALLED_ON, {pc.ci_id: None})
        sync_relationships(conn, SYSTEM, INSTALLED_ON, {pc.ci_id: ["SoftwareVersion/3"]})  # idempotent
        assert count(conn, CIRelationshipRow.__table__) == 1


def test_relationships_to_cis_of_another_system_are_left_alone(store):
    with store.transaction() as conn:
        (pc,) = upsert_cis(conn, SYSTEM, ACTOR, [write("Computer/1", ci("PC-1"))])
        (other,) = upsert_cis(conn, "sccm", ACTOR, [write("App/1", ci("App", ci_class="software"))])
        conn.execute(
            CIRelationshipRow.__table__.insert().values(
                source_ci_id=other.ci_id, target_ci_id=pc.ci_id, rel_type="installed_on", created_at=AT
            )
        )
        sync_relationships(conn, SYSTEM, INSTALLED_ON, {pc.ci_id: []})
        assert count(conn, CIRelationshipRow.__table__) == 1


def test_tickets_and_cis_are_linked_whichever_lands_first(store):
    def ticket(n: int, linked: list[str]) -> TicketWrite:
        t = Ticket(
            title=f"t{n}", source_type="glpi", created_at=AT, updated_at=AT, custom_fields={"linked_items": linked}
        )
        return TicketWrite(f"Ticket/{n}", t, f"h{n}", frozenset())

    with store.transaction() as conn:
        (known,) = upsert_cis(conn, SYSTEM, ACTOR, [write("Computer/1", ci("PC-1"))])
        t1, t2, t3 = (
            r.ticket_id
            for r in upsert_tickets(
                conn,
                SYSTEM,
                ACTOR,
                [ticket(1, ["Computer/1", "Monitor/9"]), ticket(2, ["Monitor/9"]), ticket(3, ["Printer/4"])],
            )
        )
        # The tickets land: linked to the CI already known.
        assert link_tickets_to_cis(conn, SYSTEM, {t1: ["Computer/1", "Monitor/9"], t2: ["Monitor/9"]}) == 1
        assert link_tickets_to_cis(conn, SYSTEM, {t1: ["Computer/1"]}) == 0  # idempotent
        # The monitor lands later: both tickets that name it are linked; the other system's tickets are not.
        (monitor,) = upsert_cis(conn, SYSTEM, ACTOR, [write("Monitor/9", ci("MON", ci_class="monitor"))])
        assert link_new_cis_to_tickets(conn, SYSTEM, {"Monitor/9": monitor.ci_id}) == 2
        assert link_new_cis_to_tickets(conn, "other", {"Monitor/9": monitor.ci_id}) == 0
        assert link_new_cis_to_tickets(conn, SYSTEM, {"Monitor/9": monitor.ci_id}) == 0
        links = conn.execute(select(TicketCILinkRow.ticket_id, TicketCILinkRow.ci_id, TicketCILinkRow.role)).all()
    assert sorted(links) == sorted(
        [(t1, known.ci_id, "affected"), (t1, monitor.ci_id, "affected"), (t2, monitor.ci_id, "affected")]
    )
    assert t3 not in {t for t, _, _ in links}
