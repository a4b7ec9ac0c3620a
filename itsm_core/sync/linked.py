"""The push target of a two-way source (GLPI now, Solman next): what of a ticket's changes it must hear.

For tickets linked to the system (an identity in `external_refs`) and changes that did not come from it:

- ``{"op": "update", "external_id": "Ticket/42", "fields": {"status": "resolved", ...}}`` for the pushable
  fields that changed, with their canonical values at the time of the change;
- ``{"op": "comment", "external_id": "Ticket/42", "comment_id": 7, "body": ..., "public": ..., "author": ...}``
  for each comment added in the hub or by another system.

Comments go first: a solution posted to a ticket system may change its status itself (GLPI solves the ticket),
and the status update that follows is then a no-op rather than a refusal.

The kind's writer (`SourceWriter` in `connectors/base.py`) turns these into the system's own input format and
says what it sent (`Sent`); the push flow records it (`pushed_values`, `comment_refs`) in the transaction that
marks the item sent, so the system's report of it is recognised as an echo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from itsm_core.store.bulk import one_of
from itsm_core.store.tables import CommentRow, ExternalRefRow, TicketRow
from itsm_core.sync.propagate import Change, OutboxItem

#: Canonical fields a linked system is told of when the hub (or another system) changes them.
PUSHED_FIELDS = frozenset({"status", "assignee", "assignment_group", "priority", "urgency", "impact"})

tickets = TicketRow.__table__
comments = CommentRow.__table__
external_refs = ExternalRefRow.__table__


@dataclass(frozen=True)
class Sent:
    """What a linked system now holds after one operation: canonical `fields` pushed, a new comment's identity."""

    fields: dict[str, Any] = field(default_factory=dict)
    comment_ref: str | None = None


class LinkedSystemTarget:
    def __init__(self, system: str, fields: frozenset[str] = PUSHED_FIELDS) -> None:
        self.name = system
        self.fields = fields

    def plan(self, conn: Connection, changes: Sequence[Change]) -> list[OutboxItem]:
        relevant = [c for c in changes if (c.fields & self.fields) or c.comment_ids]
        if not relevant:
            return []
        refs = dict(
            conn.execute(
                select(external_refs.c.ticket_id, external_refs.c.external_id).where(
                    external_refs.c.system == self.name,
                    one_of(conn, external_refs.c.ticket_id, {c.ticket_id for c in relevant}),
                )
            ).all()
        )
        linked = [c for c in relevant if c.ticket_id in refs]
        if not linked:
            return []
        rows = {
            row["id"]: row
            for row in conn.execute(
                select(tickets).where(one_of(conn, tickets.c.id, {c.ticket_id for c in linked}))
            ).mappings()
        }
        comment_rows = {
            row["id"]: row
            for row in conn.execute(
                select(comments).where(one_of(conn, comments.c.id, {i for c in linked for i in c.comment_ids}))
            ).mappings()
        }
        items: list[OutboxItem] = []
        for change in linked:
            external_id = refs[change.ticket_id]
            for comment_id in change.comment_ids:
                comment = comment_rows[comment_id]
                items.append(
                    (
                        change.ticket_id,
                        {
                            "op": "comment",
                            "external_id": external_id,
                            "comment_id": comment_id,
                            "body": comment["body"],
                            "public": comment["public"],
                            "author": comment["author"],
                        },
                    )
                )
            fields = sorted(change.fields & self.fields)
            if fields:
                values = {name: rows[change.ticket_id][name] for name in fields}
                items.append((change.ticket_id, {"op": "update", "external_id": external_id, "fields": values}))
        return items
