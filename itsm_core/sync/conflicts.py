"""Field ownership, the later-timestamp rule and echo suppression: which upstream changes a landing applies.

For each field an upstream record would change on an existing ticket, in this order:

1. **Echo**: the value is the one the hub last pushed to this system for this field (`pushed_values`) — the
   hub's own change coming back. Not applied, not propagated, not a conflict.
2. **Owned by the source** (mapping `ownership: {field: source}`): applied.
3. **Owned by the hub** (`ownership: {field: hub}`): kept as the hub has it, unless the hub never set it;
   the conflict is recorded and the hub's value pushed again, so both sides converge.
4. **Shared** (not listed): the later change wins — the upstream record's `updated_at` against the last
   time anyone else (the hub's rules, a person, another system) changed the field.

Every conflict, whichever side won, leaves an audit event `conflict:<field>` with both values
(old = the hub's, new = the upstream's) and the winner in its actor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, delete, func, select, tuple_

from itsm_core.store.bulk import one_of
from itsm_core.store.tables import AuditEventRow, PushedValueRow

Owner = Literal["source", "hub"]
#: Not settled: custom fields are merged (nothing is lost), `updated_at` says when the record itself changed.
UNCONTESTED = frozenset({"custom_fields", "updated_at"})
audit_events = AuditEventRow.__table__
pushed_values = PushedValueRow.__table__


def value_hash(value: Any) -> str:
    """The hash by which a pushed value is recognised when it comes back (canonical JSON of the value)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Settled:
    """What to do with one ticket's upstream changes."""

    apply: dict[str, Any] = field(default_factory=dict)
    conflicts: list[tuple[str, Any, Any, str]] = field(default_factory=list)  # field, hub's, upstream's, winner
    echoes: list[str] = field(default_factory=list)
    repush: list[str] = field(default_factory=list)  # hub values to send again
    forget: list[str] = field(default_factory=list)  # pushed values the upstream has moved on from


@dataclass(frozen=True)
class FieldPolicy:
    """A mapping's ownership table; `prepare` loads what one wave of tickets needs to `settle` each."""

    ownership: Mapping[str, Owner]

    def prepare(self, conn: Connection, system: str, changed: Mapping[int, Iterable[str]]) -> SettleContext:
        """Load what settling `changed` (ticket id → the fields the upstream changed) needs, and only that: the
        values pushed to `system` for those tickets, and when the hub last changed a field the later change wins
        (neither side owns it). A wave whose tickets changed nothing costs no query."""
        changed = {ticket_id: set(names) for ticket_id, names in changed.items() if names}
        pushed: dict[tuple[int, str], str] = {}
        hub_changed: dict[tuple[int, str], datetime] = {}
        if changed:
            rows = conn.execute(
                select(pushed_values.c.ticket_id, pushed_values.c.field, pushed_values.c.value_hash).where(
                    pushed_values.c.system == system, one_of(conn, pushed_values.c.ticket_id, changed)
                )
            )
            pushed = {(ticket_id, name): digest for ticket_id, name, digest in rows}
        contested = {ticket_id: names - UNCONTESTED - self.ownership.keys() for ticket_id, names in changed.items()}
        contested = {ticket_id: names for ticket_id, names in contested.items() if names}
        if contested:
            last = (
                select(audit_events.c.entity_id, audit_events.c.field, func.max(audit_events.c.at))
                .where(
                    audit_events.c.entity == "ticket",
                    one_of(conn, audit_events.c.entity_id, contested),
                    one_of(conn, audit_events.c.field, set().union(*contested.values())),
                    audit_events.c.actor != f"source:{system}",
                )
                .group_by(audit_events.c.entity_id, audit_events.c.field)
            )
            hub_changed = {(ticket_id, name): at for ticket_id, name, at in conn.execute(last)}
        return SettleContext(self, pushed, hub_changed)


@dataclass(frozen=True)
class SettleContext:
    policy: FieldPolicy
    pushed: dict[tuple[int, str], str]
    hub_changed: dict[tuple[int, str], datetime]

    def settle(self, ticket_id: int, old: Mapping[str, Any], changes: dict[str, Any], upstream_at: datetime) -> Settled:
        """Sort `changes` (field → upstream value, each differing from `old`) into what applies and what not."""
        settled = Settled()
        for name, value in changes.items():
            digest = self.pushed.get((ticket_id, name))
            if digest is not None and digest == value_hash(value):
                settled.echoes.append(name)
                continue
            if digest is not None:
                settled.forget.append(name)
            owner = "source" if name in UNCONTESTED else self.policy.ownership.get(name)
            hub_value = old[name]
            if owner == "source" or hub_value is None:
                settled.apply[name] = value
            elif owner == "hub":
                settled.conflicts.append((name, hub_value, value, "hub"))
                settled.repush.append(name)
            else:
                changed_at = self.hub_changed.get((ticket_id, name))
                if changed_at is None or upstream_at > changed_at:
                    settled.apply[name] = value
                    if changed_at is not None:
                        settled.conflicts.append((name, hub_value, value, "upstream"))
                else:
                    settled.conflicts.append((name, hub_value, value, "hub"))
                    settled.repush.append(name)
        return settled


def remember_pushed(conn: Connection, system: str, items: Iterable[tuple[int, str, Any]], at: datetime) -> None:
    """Record (ticket id, field, value) as pushed to `system`, replacing what was pushed before."""
    rows = {(ticket_id, name): value_hash(value) for ticket_id, name, value in items}
    if not rows:
        return
    conn.execute(
        delete(pushed_values).where(
            pushed_values.c.system == system,
            tuple_(pushed_values.c.ticket_id, pushed_values.c.field).in_(list(rows)),
        )
    )
    conn.execute(
        pushed_values.insert(),
        [
            {"system": system, "ticket_id": ticket_id, "field": name, "value_hash": digest, "pushed_at": at}
            for (ticket_id, name), digest in rows.items()
        ],
    )


def forget_pushed(conn: Connection, system: str, items: Iterable[tuple[int, str]]) -> None:
    keys = list(items)
    if keys:
        conn.execute(
            delete(pushed_values).where(
                pushed_values.c.system == system,
                tuple_(pushed_values.c.ticket_id, pushed_values.c.field).in_(keys),
            )
        )
