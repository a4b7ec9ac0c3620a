"""Configuration items in batches, the relationships between them, and the links from tickets to them.

`upsert_cis` is the CI side of `upsert_tickets`: a handful of set-based statements per batch whatever its size —
one lookup of known identities `(system, external_id)` in `external_refs`, one multi-row INSERT … RETURNING for new
CIs, one executemany UPDATE for changed ones, one INSERT each for identities and audit events (entity ``ci``).

The source owns every field of its CIs (there is no hub-side editing of CIs): a later landing sets them all, an
empty value included, except `attributes`, which are merged key by key so keys set by others stay.

Relationships and ticket links are derived from lists of external ids in the same system: a CI's attribute (the
software versions installed on a computer: `RelationshipSpec`) and a ticket's ``custom_fields.linked_items`` (the
assets a GLPI ticket names). Whichever side lands first, the edge or link is written when the second one does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, bindparam, delete, exists, func, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import Text

from itsm_core.mapping import RelationshipSpec
from itsm_core.models import ConfigurationItem, utcnow
from itsm_core.store.audit import audit_event
from itsm_core.store.bulk import insert_ignoring_conflicts, insert_returning, insert_rows, one_of, update_by_id
from itsm_core.store.identities import add_identities
from itsm_core.store.tables import (
    AuditEventRow,
    CIRelationshipRow,
    ConfigurationItemRow,
    ExternalRefRow,
    TicketCILinkRow,
    TicketRow,
)

configuration_items = ConfigurationItemRow.__table__
ci_relationships = CIRelationshipRow.__table__
ticket_ci_links = TicketCILinkRow.__table__
external_refs = ExternalRefRow.__table__
audit_events = AuditEventRow.__table__
tickets = TicketRow.__table__

#: The ticket custom field listing the CIs a ticket concerns, by external id in the ticket's own system.
LINKED_ITEMS = "linked_items"
#: The role of a CI a ticket names (the only one sources give today).
AFFECTED = "affected"
#: The CI's own columns a landing sets (besides the merged `attributes`).
CI_COLUMNS = ("ci_class", "name", "serial", "status", "tenant")
#: Columns whose initial value starts the CI's audit history.
AUDITED_ON_CREATE = ("status",)

Outcome = Literal["created", "updated", "unchanged", "quarantined"]


@dataclass(frozen=True)
class CIWrite:
    """One mapped record to write: its identity in the system, the canonical CI and the landed payload's hash."""

    external_id: str
    ci: ConfigurationItem
    payload_hash: str | None = None


@dataclass
class CIWriteResult:
    outcome: Outcome
    ci_id: int | None = None
    error: str | None = None
    changed: list[str] = field(default_factory=list)


def upsert_cis(conn: Connection, system: str, actor: str, items: Sequence[CIWrite]) -> list[CIWriteResult]:
    """Create or update the CIs `items` describe; results are in the order of `items`.

    Idempotent: writing the same items again reports them unchanged and writes nothing but the landed hash. An
    external id that already names a ticket in `system` is refused (`quarantined`, with the reason).
    """
    results: list[CIWriteResult | None] = [None] * len(items)
    # Waves of distinct external ids, so two versions of one record in a batch apply in order.
    pending = list(range(len(items)))
    while pending:
        seen: set[str] = set()
        wave, later = [], []
        for index in pending:
            (later if items[index].external_id in seen else wave).append(index)
            seen.add(items[index].external_id)
        _write_wave(conn, system, actor, items, wave, results)
        pending = later
    return [r for r in results if r is not None]


def _write_wave(
    conn: Connection,
    system: str,
    actor: str,
    items: Sequence[CIWrite],
    wave: list[int],
    results: list[CIWriteResult | None],
) -> None:
    now = utcnow()
    known: dict[str, tuple[int, int | None]] = {
        external_id: (ref_id, ci_id)
        for external_id, ref_id, ci_id in conn.execute(
            select(external_refs.c.external_id, external_refs.c.id, external_refs.c.ci_id).where(
                external_refs.c.system == system,
                one_of(conn, external_refs.c.external_id, [items[i].external_id for i in wave]),
            )
        )
    }
    new, existing = [], []
    for i in wave:
        ref = known.get(items[i].external_id)
        if ref is None:
            new.append(i)
        elif ref[1] is None:
            results[i] = CIWriteResult(
                "quarantined", error=f"{items[i].external_id} already names a ticket in {system}, not a CI"
            )
        else:
            existing.append(i)

    if new:
        rows = [{**_row(items[i].ci), "created_at": now, "updated_at": now} for i in new]
        ids = insert_returning(conn, configuration_items, rows)
        add_identities(
            conn,
            system,
            "ci_id",
            [(items[i].external_id, items[i].payload_hash, ci_id) for i, ci_id in zip(new, ids, strict=True)],
            now,
        )
        events = [
            audit_event("ci", ci_id, name, None, rows[k][name], actor, system, now)
            for k, ci_id in enumerate(ids)
            for name in AUDITED_ON_CREATE
            if rows[k][name] is not None
        ]
        if events:
            insert_rows(conn, audit_events, events)
        for i, ci_id in zip(new, ids, strict=True):
            results[i] = CIWriteResult("created", ci_id)

    if existing:
        _update_existing(conn, system, actor, items, existing, known, results, now)


def _update_existing(
    conn: Connection,
    system: str,
    actor: str,
    items: Sequence[CIWrite],
    existing: list[int],
    known: dict[str, tuple[int, int | None]],
    results: list[CIWriteResult | None],
    now: datetime,
) -> None:
    ids = [known[items[i].external_id][1] for i in existing]
    current = {
        row["id"]: row
        for row in conn.execute(
            select(configuration_items).where(one_of(conn, configuration_items.c.id, ids))
        ).mappings()
    }
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i in existing:
        ci_id = known[items[i].external_id][1]
        assert ci_id is not None
        old = current[ci_id]
        new = _row(items[i].ci)
        changes = {name: new[name] for name in CI_COLUMNS if new[name] != old[name]}
        events += [
            audit_event("ci", ci_id, name, old[name], value, actor, system, now) for name, value in changes.items()
        ]
        old_attributes = dict(old["attributes"] or {})
        attributes = {**old_attributes, **new["attributes"]}
        if attributes != old_attributes:
            changes["attributes"] = attributes
            events += [
                audit_event(
                    "ci", ci_id, f"attributes.{key}", old_attributes.get(key), attributes.get(key), actor, system, now
                )
                for key in sorted(attributes)
                if attributes.get(key) != old_attributes.get(key)
            ]
        if changes:
            updates.append({"id": ci_id, **changes, "updated_at": now})
        changed = sorted(name for name in changes if name != "attributes")
        changed += sorted(f"attributes.{k}" for k in attributes if attributes.get(k) != old_attributes.get(k))
        results[i] = CIWriteResult("updated" if changes else "unchanged", ci_id, changed=changed)
    update_by_id(conn, configuration_items, updates)
    if events:
        insert_rows(conn, audit_events, events)
    landed = [
        {"id": known[items[i].external_id][0], "landed_hash": items[i].payload_hash, "updated_at": now}
        for i in existing
    ]
    update_by_id(conn, external_refs, landed)


def _row(ci: ConfigurationItem) -> dict[str, Any]:
    row = ci.model_dump()
    row["status"] = ci.status.value
    return row


# --- identities ------------------------------------------------------------------------------------------


def ci_ids(conn: Connection, system: str, external_ids: Iterable[str]) -> dict[str, int]:
    """external id → CI id, for those of `external_ids` that name a CI in `system`."""
    wanted = sorted(set(external_ids))
    if not wanted:
        return {}
    query = select(external_refs.c.external_id, external_refs.c.ci_id).where(
        external_refs.c.system == system,
        one_of(conn, external_refs.c.external_id, wanted),
        external_refs.c.ci_id.is_not(None),
    )
    return {external_id: ci_id for external_id, ci_id in conn.execute(query)}


def get_ci(conn: Connection, system: str, external_id: str) -> dict[str, Any] | None:
    """The CI `external_id` names in `system`, with its relationships (by CI id) and the tickets linked to it."""
    ci_id = ci_ids(conn, system, [external_id]).get(external_id)
    if ci_id is None:
        return None
    row = conn.execute(select(configuration_items).where(configuration_items.c.id == ci_id)).mappings().one()
    ci = dict(row)
    edges = conn.execute(
        select(ci_relationships.c.source_ci_id, ci_relationships.c.rel_type, ci_relationships.c.target_ci_id).where(
            (ci_relationships.c.source_ci_id == ci_id) | (ci_relationships.c.target_ci_id == ci_id)
        )
    ).all()
    ci["relationships"] = sorted((s, r, t) for s, r, t in edges)
    ci["ticket_ids"] = sorted(
        conn.execute(select(ticket_ci_links.c.ticket_id).where(ticket_ci_links.c.ci_id == ci_id)).scalars()
    )
    return ci


# --- relationships ---------------------------------------------------------------------------------------


def sync_relationships(
    conn: Connection, system: str, spec: RelationshipSpec, lists: Mapping[int, Sequence[str] | None]
) -> None:
    """Make the `spec` edges of each CI in `lists` (CI id → the external ids its attribute lists) what it lists.

    Listed CIs not known yet are skipped (`relate_new_cis` adds the edge when they land). A CI whose list is None
    (the source did not say) keeps its edges. Edges to CIs of other systems are never removed.
    """
    lists = {owner: ids for owner, ids in lists.items() if ids is not None}
    if not lists:
        return
    resolved = ci_ids(conn, system, (e for ids in lists.values() for e in ids))
    desired = {
        _edge(spec, owner, resolved[e])
        for owner, ids in lists.items()
        for e in ids
        if e in resolved and resolved[e] != owner
    }
    incoming = spec.direction == "incoming"
    owner_column = ci_relationships.c.target_ci_id if incoming else ci_relationships.c.source_ci_id
    existing = conn.execute(
        select(ci_relationships.c.id, ci_relationships.c.source_ci_id, ci_relationships.c.target_ci_id).where(
            ci_relationships.c.rel_type == spec.rel_type, one_of(conn, owner_column, list(lists))
        )
    ).all()
    present = {(source, target) for _, source, target in existing}
    stale = [
        (edge_id, source if incoming else target)
        for edge_id, source, target in existing
        if (source, target) not in desired
    ]
    if stale:
        ours = set(
            conn.execute(
                select(external_refs.c.ci_id).where(
                    external_refs.c.system == system, one_of(conn, external_refs.c.ci_id, {other for _, other in stale})
                )
            ).scalars()
        )
        gone = [edge_id for edge_id, other in stale if other in ours]
        if gone:
            conn.execute(delete(ci_relationships).where(one_of(conn, ci_relationships.c.id, gone)))
    _insert_edges(conn, spec, desired - present)


def relate_new_cis(conn: Connection, system: str, spec: RelationshipSpec, new: Mapping[str, int]) -> None:
    """The `spec` edges to CIs just created (`new`: external id → CI id) from CIs of `system` already listing them.

    E.g. a computer landed before a software version it has: the edge is written when the version lands.
    """
    if not new:
        return
    owners = conn.execute(
        select(configuration_items.c.id, configuration_items.c.attributes)
        .join(external_refs, external_refs.c.ci_id == configuration_items.c.id)
        .where(
            external_refs.c.system == system,
            _json_list_has_any(conn, configuration_items.c.attributes, spec.attribute, new),
        )
    ).all()
    edges = {
        _edge(spec, owner, new[e])
        for owner, attributes in owners
        for e in (attributes or {}).get(spec.attribute) or ()
        if e in new and new[e] != owner
    }
    _insert_edges(conn, spec, edges)


def _edge(spec: RelationshipSpec, owner: int, other: int) -> tuple[int, int]:
    """(source CI, target CI) of an edge the owner's attribute declares."""
    return (other, owner) if spec.direction == "incoming" else (owner, other)


def _insert_edges(conn: Connection, spec: RelationshipSpec, edges: Iterable[tuple[int, int]]) -> None:
    now = utcnow()
    rows = [
        {"source_ci_id": source, "target_ci_id": target, "rel_type": spec.rel_type, "created_at": now}
        for source, target in sorted(edges)
    ]
    insert_ignoring_conflicts(conn, ci_relationships, rows, ["source_ci_id", "rel_type", "target_ci_id"])


# --- tickets ↔ CIs ---------------------------------------------------------------------------------------


def link_tickets_to_cis(conn: Connection, system: str, wanted: Mapping[int, Sequence[str]]) -> int:
    """Link each ticket (ticket id → the external ids of the CIs it names in `system`) to those CIs known already.

    Idempotent (links already there are left alone); returns the number of links added. CIs not known yet are
    linked when they land (`link_new_cis_to_tickets`).
    """
    resolved = ci_ids(conn, system, (e for ids in wanted.values() for e in ids))
    pairs = {(ticket_id, resolved[e]) for ticket_id, ids in wanted.items() for e in ids if e in resolved}
    return _insert_links(conn, pairs)


def link_new_cis_to_tickets(conn: Connection, system: str, new: Mapping[str, int]) -> int:
    """Link CIs just created (`new`: external id → CI id) to the tickets of `system` that already name them."""
    if not new:
        return 0
    named = conn.execute(
        select(tickets.c.id, tickets.c.custom_fields)
        .join(external_refs, external_refs.c.ticket_id == tickets.c.id)
        .where(external_refs.c.system == system, _json_list_has_any(conn, tickets.c.custom_fields, LINKED_ITEMS, new))
    ).all()
    pairs = {
        (ticket_id, new[e])
        for ticket_id, custom_fields in named
        for e in (custom_fields or {}).get(LINKED_ITEMS) or ()
        if e in new
    }
    return _insert_links(conn, pairs)


def _insert_links(conn: Connection, pairs: Iterable[tuple[int, int]]) -> int:
    now = utcnow()
    rows = [{"ticket_id": t, "ci_id": c, "role": AFFECTED, "created_at": now} for t, c in sorted(pairs)]
    inserted = insert_ignoring_conflicts(
        conn, ticket_ci_links, rows, ["ticket_id", "ci_id", "role"], returning=[ticket_ci_links.c.ticket_id]
    )
    return len(inserted)


def _json_list_has_any(
    conn: Connection, column: ColumnElement[Any], key: str, values: Iterable[str]
) -> ColumnElement[bool]:
    """`column[key]` (a JSON list of strings) holds one of `values` — JSONB's `?|` on PostgreSQL, json_each on
    SQLite."""
    wanted = sorted(values)
    if conn.dialect.name == "postgresql":
        document = column.op("->", return_type=postgresql.JSONB)(literal(key, Text))
        return func.jsonb_exists_any(document, bindparam(None, wanted, type_=postgresql.ARRAY(Text)))
    quoted = key.replace('"', '\\"')
    each = func.json_each(column, f'$."{quoted}"').table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value.in_(wanted)))
