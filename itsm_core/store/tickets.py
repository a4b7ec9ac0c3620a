"""Writing and reading canonical tickets, in batches.

`upsert_tickets` is the hot path: a handful of set-based statements per batch whatever its size — one
lookup of known identities, one multi-row INSERT … RETURNING for new tickets, one executemany UPDATE for
changed ones, one INSERT each for identities, attachments and audit events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, func, select

from itsm_core.errors import InvalidTransition, NotFound
from itsm_core.models import OPEN_STATUSES, Attachment, ClassifiedBy, Ticket, TicketStatus, check_transition, utcnow
from itsm_core.store.audit import audit_event
from itsm_core.store.bulk import insert_ignoring_conflicts, insert_returning, insert_rows, one_of, update_by_id
from itsm_core.store.identities import add_identities
from itsm_core.store.tables import (
    AttachmentBlobRow,
    AttachmentRow,
    AuditEventRow,
    CommentRow,
    ExternalRefRow,
    TicketRow,
    TicketWatcherRow,
)
from itsm_core.sync.conflicts import FieldPolicy, forget_pushed

tickets = TicketRow.__table__
external_refs = ExternalRefRow.__table__
audit_events = AuditEventRow.__table__
attachment_blobs = AttachmentBlobRow.__table__
attachments = AttachmentRow.__table__

#: Fields whose initial value is worth an audit event: the history SLA clocks and reports are built from.
AUDITED_ON_CREATE = ("status", "priority", "impact", "urgency", "category", "assignment_group", "assignee")
#: Never changed by a later landing of the same record.
CREATE_ONLY = frozenset({"created_at", "kind"})

Outcome = Literal["created", "updated", "unchanged", "quarantined"]


@dataclass(frozen=True)
class TicketWrite:
    """One mapped record to write: its identity in `system`, the canonical ticket and the landed payload's hash.

    `update_fields` are the fields the source owns: on a later landing only they may change the ticket.
    """

    external_id: str
    ticket: Ticket
    payload_hash: str
    update_fields: frozenset[str]


@dataclass
class WriteResult:
    outcome: Outcome
    ticket_id: int | None = None
    error: str | None = None
    changed: list[str] = field(default_factory=list)
    repush: list[str] = field(default_factory=list)  # fields whose hub value won a conflict: send it again


def upsert_tickets(
    conn: Connection, system: str, actor: str, items: Sequence[TicketWrite], policy: FieldPolicy | None = None
) -> list[WriteResult]:
    """Create or update the tickets `items` describe; results are in the order of `items`.

    Idempotent: writing the same items again reports them unchanged and writes nothing but the landed hash.
    A status change the transition table refuses leaves the ticket as it is and reports `quarantined`.
    With a `policy`, changes to existing tickets go through ownership, the later-timestamp rule and echo
    suppression first (`itsm_core/sync/conflicts.py`).
    """
    results: list[WriteResult | None] = [None] * len(items)
    # Waves of distinct external ids, so two versions of one record in a batch apply in order.
    pending = list(range(len(items)))
    while pending:
        seen: set[str] = set()
        wave, later = [], []
        for index in pending:
            (later if items[index].external_id in seen else wave).append(index)
            seen.add(items[index].external_id)
        _write_wave(conn, system, actor, items, wave, results, policy)
        pending = later
    return [r for r in results if r is not None]


def _write_wave(
    conn: Connection,
    system: str,
    actor: str,
    items: Sequence[TicketWrite],
    wave: list[int],
    results: list[WriteResult | None],
    policy: FieldPolicy | None,
) -> None:
    now = utcnow()
    known: dict[str, tuple[int, int]] = {
        external_id: (ref_id, ticket_id)
        for external_id, ref_id, ticket_id in conn.execute(
            select(external_refs.c.external_id, external_refs.c.id, external_refs.c.ticket_id).where(
                external_refs.c.system == system,
                one_of(conn, external_refs.c.external_id, [items[i].external_id for i in wave]),
            )
        )
    }
    new = [i for i in wave if items[i].external_id not in known]
    existing = [i for i in wave if items[i].external_id in known]

    if new:
        rows = [_row(items[i].ticket) for i in new]
        ids = insert_returning(conn, tickets, rows)
        add_identities(
            conn,
            system,
            "ticket_id",
            [(items[i].external_id, items[i].payload_hash, ticket_id) for i, ticket_id in zip(new, ids, strict=True)],
            now,
        )
        events = [
            _event(ticket_id, name, None, rows[k][name], actor, system, items[i].ticket.created_at)
            for k, (i, ticket_id) in enumerate(zip(new, ids, strict=True))
            for name in AUDITED_ON_CREATE
            if rows[k][name] is not None
        ]
        if events:
            insert_rows(conn, audit_events, events)
        _attach(conn, [(ticket_id, items[i].ticket) for i, ticket_id in zip(new, ids, strict=True)], now)
        for i, ticket_id in zip(new, ids, strict=True):
            results[i] = WriteResult("created", ticket_id)

    if existing:
        _update_existing(conn, system, actor, items, existing, known, results, now, policy)


def _update_existing(
    conn: Connection,
    system: str,
    actor: str,
    items: Sequence[TicketWrite],
    existing: list[int],
    known: dict[str, tuple[int, int]],
    results: list[WriteResult | None],
    now: datetime,
    policy: FieldPolicy | None,
) -> None:
    ticket_of = {i: known[items[i].external_id][1] for i in existing}
    query = select(tickets).where(one_of(conn, tickets.c.id, ticket_of.values()))
    current = {row["id"]: row for row in conn.execute(query).mappings()}
    proposed = {i: _changes(current[ticket_of[i]], _row(items[i].ticket), items[i].update_fields - CREATE_ONLY)
                for i in existing}  # fmt: skip
    context = policy.prepare(conn, system, {ticket_of[i]: proposed[i] for i in existing}) if policy else None
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    to_attach: list[tuple[int, Ticket]] = []
    forget: list[tuple[int, str]] = []
    for i in existing:
        item = items[i]
        ticket_id = ticket_of[i]
        old = current[ticket_id]
        changes = proposed[i]
        repush: list[str] = []
        if context is not None and changes:
            settled = context.settle(ticket_id, old, changes, item.ticket.updated_at)
            changes, repush = settled.apply, settled.repush
            forget += [(ticket_id, name) for name in settled.forget]
            events += [
                _event(ticket_id, f"conflict:{name}", hub, upstream, f"conflict:{winner}-kept", system, now)
                for name, hub, upstream, winner in settled.conflicts
            ]
        happened = upstream_time(item.ticket.updated_at, old["updated_at"], now)
        if "status" in changes:
            try:
                check_transition(old["status"], changes["status"])
            except InvalidTransition as exc:
                results[i] = WriteResult("quarantined", ticket_id, error=str(exc))
                continue
            for name, value in _status_timestamps(old, changes["status"], happened).items():
                changes.setdefault(name, value)  # the source's own date (GLPI's solvedate) wins
        new_attachments = "attachments" in item.update_fields and bool(item.ticket.attachments)
        if new_attachments:
            to_attach.append((ticket_id, item.ticket))
        if changes:
            updates.append(
                {"id": ticket_id, **changes, **_claimed(old, changes, ClassifiedBy.SOURCE), "updated_at": now}
            )
            events.extend(_event(ticket_id, k, old[k], v, actor, system, happened) for k, v in changes.items())
        results[i] = WriteResult(
            "updated" if changes else "unchanged", ticket_id, changed=sorted(changes), repush=sorted(repush)
        )
    update_by_id(conn, tickets, updates)
    forget_pushed(conn, system, forget)
    if events:
        insert_rows(conn, audit_events, events)
    _attach(conn, to_attach, now)
    landed = [
        {"id": known[items[i].external_id][0], "landed_hash": items[i].payload_hash, "updated_at": now}
        for i in existing
    ]
    update_by_id(conn, external_refs, landed)


def upstream_time(modified: datetime, last_recorded: datetime, now: datetime) -> datetime:
    """When an upstream change happened, for its audit events: the source's own modification time (GLPI's
    `date_mod`), so SLA clocks stop when a person acted there, not when the hub next polled. Kept within
    [the ticket's last recorded change, now]: history stays in order even if the source's clock is off or a
    dead letter is replayed days later."""
    return min(max(modified, last_recorded), now)


def _changes(old: Any, new: dict[str, Any], owned: frozenset[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in owned & new.keys():
        value = new[name]
        if name == "custom_fields":
            value = {**(old[name] or {}), **value}  # merge: keys set by rules or people stay
        if value is not None and value != old[name]:
            changes[name] = value
    return changes


def _claimed(old: Any, changes: dict[str, Any], by: ClassifiedBy) -> dict[str, Any]:
    """A field a source or a person sets is theirs from then on: the hub's rules no longer decide it."""
    extra: dict[str, Any] = {}
    decided = old["decided_by"] or {}
    if decided.keys() & changes.keys():
        extra["decided_by"] = {name: rule for name, rule in decided.items() if name not in changes}
    if "category" in changes:
        extra["classified_by"] = by.value
        extra["classification_confidence"] = None
    return extra


def _status_timestamps(old: Any, status: str, now: datetime) -> dict[str, Any]:
    if status == TicketStatus.RESOLVED and old["resolved_at"] is None:
        return {"resolved_at": now}
    if status == TicketStatus.CLOSED and old["closed_at"] is None:
        return {"closed_at": now}
    if old["status"] == TicketStatus.RESOLVED and status in OPEN_STATUSES:
        return {"resolved_at": None}  # reopened
    return {}


def _row(ticket: Ticket) -> dict[str, Any]:
    row = ticket.model_dump(exclude={"attachments"})
    for name in ("kind", "status", "classified_by"):
        if row[name] is not None:
            row[name] = str(row[name])
    return row


def _event(
    ticket_id: int, name: str, old: Any, new: Any, actor: str, source: str | None, at: datetime
) -> dict[str, Any]:
    return audit_event("ticket", ticket_id, name, old, new, actor, source, at)


def _attach(conn: Connection, owners: Iterable[tuple[int, Ticket]], now: datetime) -> None:
    store_attachments(conn, [(ticket_id, None, a) for ticket_id, ticket in owners for a in ticket.attachments], now)


def store_attachments(conn: Connection, items: Iterable[tuple[int, int | None, Attachment]], now: datetime) -> None:
    """Store each (ticket id, comment id or None, attachment): content once per sha256, one link per (hash, name)."""
    blobs: dict[str, dict[str, Any]] = {}
    links: list[dict[str, Any]] = []
    for ticket_id, comment_id, attachment in items:
        digest = attachment.sha256
        blobs.setdefault(digest, {"sha256": digest, "size": attachment.size, "content": attachment.content})
        links.append(
            {
                "ticket_id": ticket_id,
                "comment_id": comment_id,
                "name": attachment.name,
                "content_type": attachment.content_type,
                "size": attachment.size,
                "sha256": digest,
                "content_id": attachment.content_id,
                "created_at": now,
            }
        )
    insert_ignoring_conflicts(conn, attachment_blobs, list(blobs.values()), ["sha256"])
    insert_ignoring_conflicts(conn, attachments, links, ["ticket_id", "sha256", "name"])


def change_status(conn: Connection, ticket_id: int, status: TicketStatus | str, actor: str) -> bool:
    """Move one ticket to `status`, refusing transitions the table does not allow; True if it changed.

    Raises `NotFound` for an unknown ticket and `InvalidTransition` for a move the table refuses.
    """
    row = conn.execute(select(tickets.c.id, tickets.c.status).where(tickets.c.id == ticket_id)).one_or_none()
    if row is None:
        raise NotFound(f"no ticket {format_ticket_id(ticket_id)}")
    check_transition(row.status, status)
    return bool(set_statuses(conn, {ticket_id: TicketStatus(status)}, actor))


def set_statuses(
    conn: Connection,
    wanted: dict[int, TicketStatus],
    actor: str,
    *,
    source: str | None = None,
    only_from: frozenset[str] | None = None,
) -> list[int]:
    """Move many tickets at once, with their timestamps and audit events; returns the ids that changed.

    Tickets already in the wanted status, whose move the transition table refuses, or (with `only_from`)
    not in one of those statuses, are left as they are.
    """
    if not wanted:
        return []
    rows = conn.execute(select(tickets).where(one_of(conn, tickets.c.id, wanted))).mappings().all()
    now = utcnow()
    updates, events = [], []
    for row in rows:
        status = TicketStatus(wanted[row["id"]])
        if status == row["status"] or (only_from is not None and row["status"] not in only_from):
            continue
        try:
            check_transition(row["status"], status)
        except InvalidTransition:
            continue
        timestamps = _status_timestamps(row, status, now)
        updates.append({"id": row["id"], "status": status.value, **timestamps, "updated_at": now})
        events.append(_event(row["id"], "status", row["status"], status.value, actor, source, now))
    update_by_id(conn, tickets, updates)
    if events:
        insert_rows(conn, audit_events, events)
    return [u["id"] for u in updates]


#: Fields a person or the hub's rules may set directly (status has its own transition table: `change_status`).
SETTABLE = frozenset(
    {"assignee", "assignment_group", "urgency", "impact", "priority", "category", "subcategory", "intent"}
)


def set_fields(conn: Connection, ticket_id: int, values: dict[str, Any], actor: str) -> dict[str, Any]:
    """A person sets some of `SETTABLE` on one ticket, with an audit event each; returns the fields that changed.

    Every field named becomes the person's, also when its value stays (a confirmation): the hub's rules no
    longer decide it, and a confirmed category counts as human-labelled for training the classifier.
    Raises `NotFound` for an unknown ticket and `ValueError` for a field not in `SETTABLE`.
    """
    unknown = set(values) - SETTABLE
    if unknown:
        raise ValueError(f"cannot set {', '.join(sorted(unknown))}; settable: {', '.join(sorted(SETTABLE))}")
    row = conn.execute(select(tickets).where(tickets.c.id == ticket_id)).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no ticket {format_ticket_id(ticket_id)}")
    changed = {name: value for name, value in values.items() if row[name] != value}
    claimed = _claimed(row, values, ClassifiedBy.HUMAN)
    if "classified_by" in claimed and claimed["classified_by"] == row["classified_by"]:
        claimed.pop("classified_by")
        claimed.pop("classification_confidence")
    if not changed and not claimed:
        return {}
    now = utcnow()
    update_by_id(conn, tickets, [{"id": ticket_id, **changed, **claimed, "updated_at": now}])
    events = [_event(ticket_id, name, row[name], value, actor, None, now) for name, value in changed.items()]
    if "classified_by" in claimed:
        changed["classified_by"] = claimed["classified_by"]
        events.append(
            _event(ticket_id, "classified_by", row["classified_by"], claimed["classified_by"], actor, None, now)
        )
    insert_rows(conn, audit_events, events)
    return changed


# --- reading ---------------------------------------------------------------------------------------------


def ticket_exists(conn: Connection, ticket_id: int) -> bool:
    return conn.execute(select(tickets.c.id).where(tickets.c.id == ticket_id)).first() is not None


def format_ticket_id(ticket_id: int) -> str:
    """How people see a ticket number: T-000123 (also the token later put in mail subjects)."""
    return f"T-{ticket_id:06d}"


def parse_ticket_id(text: str) -> int:
    digits = text.strip().upper().removeprefix("T-").lstrip("#")
    if not digits.isdigit():
        raise NotFound(f"'{text}' is not a ticket number; use the number shown by `itsm tickets list`, e.g. T-000001")
    return int(digits)


def list_tickets(
    conn: Connection, *, status: str | None = None, source_type: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(tickets).order_by(tickets.c.id.desc()).limit(limit)
    if status:
        query = query.where(tickets.c.status == status)
    if source_type:
        query = query.where(tickets.c.source_type == source_type)
    return [dict(row) for row in conn.execute(query).mappings()]


def labelled_texts(conn: Connection, target: str) -> tuple[list[str], list[str]]:
    """The text (title, a line break, the description: what the rules' `text` is) and the `target` field of every
    ticket whose `target` a person or a source set or confirmed — the examples a classifier may learn from."""
    column = tickets.c[target]
    query = select(tickets.c.title, tickets.c.description, column, tickets.c.classified_by, tickets.c.decided_by)
    texts: list[str] = []
    labels: list[str] = []
    for title, description, label, classified_by, decided_by in conn.execute(query.where(column.is_not(None))):
        if target == "category":
            if classified_by not in (ClassifiedBy.HUMAN, ClassifiedBy.SOURCE):
                continue
        elif target in (decided_by or {}):
            continue
        texts.append(f"{title}\n{description or ''}")
        labels.append(str(label))  # impact and urgency are levels: their labels are "1", "2", ...
    return texts, labels


def count_tickets(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(tickets)).scalar_one()


def get_ticket(conn: Connection, ticket_id: int) -> dict[str, Any]:
    """A ticket with its external identities, attachments, comments and audit trail."""
    row = conn.execute(select(tickets).where(tickets.c.id == ticket_id)).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no ticket {format_ticket_id(ticket_id)}; `itsm tickets list` shows the existing ones")
    ticket = dict(row)
    ticket["external_refs"] = [
        dict(r)
        for r in conn.execute(
            select(external_refs.c.system, external_refs.c.external_id, external_refs.c.updated_at).where(
                external_refs.c.ticket_id == ticket_id
            )
        ).mappings()
    ]
    ticket["attachments"] = [
        dict(r)
        for r in conn.execute(
            select(attachments.c.name, attachments.c.content_type, attachments.c.size, attachments.c.sha256)
            .where(attachments.c.ticket_id == ticket_id)
            .order_by(attachments.c.id)
        ).mappings()
    ]
    comments = CommentRow.__table__
    ticket["comments"] = [
        dict(r)
        for r in conn.execute(
            select(comments).where(comments.c.ticket_id == ticket_id).order_by(comments.c.created_at)
        ).mappings()
    ]
    watchers = TicketWatcherRow.__table__
    ticket["watchers"] = list(
        conn.execute(
            select(watchers.c.address).where(watchers.c.ticket_id == ticket_id).order_by(watchers.c.address)
        ).scalars()
    )
    ticket["audit"] = [
        dict(r)
        for r in conn.execute(
            select(audit_events)
            .where(audit_events.c.entity == "ticket", audit_events.c.entity_id == ticket_id)
            .order_by(audit_events.c.id)
        ).mappings()
    ]
    return ticket
