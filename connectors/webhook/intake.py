"""What each webhook event does to its ticket (the mapping's ``events``), decided per delivery before mapping.

open → a new ticket, or on a known one a comment (a repeat); update → create or update; comment → a comment on a
known ticket; resolve → the mapped fields (status included) on a known ticket, nothing to resolve is ignored;
ignore → counted, nothing written. An event the mapping does not list is quarantined with its name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Connection, select

from connectors.webhook.source import webhook_events
from itsm_core.mapping import value_at
from itsm_core.models import RawRecord, TicketStatus
from itsm_core.store.bulk import one_of
from itsm_core.store.tables import ExternalRefRow, TicketRow
from itsm_core.sync.intake import AddComment, Disposition, Ignore, MakeTicket, Refuse, Triaged
from itsm_core.sync.propagate import Change
from itsm_core.sync.related import RelatedRecords

external_refs = ExternalRefRow.__table__
tickets = TicketRow.__table__
_templates = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


class WebhookIntake(RelatedRecords):
    def __init__(self, source: Any) -> None:
        super().__init__(source.name)
        self.events = webhook_events(source)
        self.comment = _templates.from_string(self.events.comment) if self.events.comment else None
        self.first_comment = _templates.from_string(self.events.first_comment) if self.events.first_comment else None

    @classmethod
    def for_source(cls, config: Any, source: Any) -> WebhookIntake:
        return cls(source)

    def triage(
        self, conn: Connection, items: Sequence[tuple[RawRecord, dict[str, Any]]], *, final: bool
    ) -> list[Disposition]:
        known = self._tickets(conn, {record.external_id for record, _ in items})
        return [
            self._decide(record, decoded, *known.get(record.external_id, (None, None))) for record, decoded in items
        ]

    def _decide(
        self, record: RawRecord, decoded: dict[str, Any], ticket_id: int | None, status: str | None
    ) -> Disposition:
        event = value_at(decoded, self.events.event)
        action = self.events.actions.get(str(event)) if event is not None else None
        if action is None:
            listed = ", ".join(sorted(self.events.actions))
            return Refuse(
                f"event {event!r} (at {self.events.event}) has no action in the mapping's events.actions "
                f"({listed}); add it and replay"
            )
        if action == "ignore":
            return Ignore("event", f"event {event!r} is ignored by the mapping", ticket_id)
        if action == "update" or (action == "open" and (ticket_id is None or status == TicketStatus.RESOLVED)):
            return MakeTicket()  # an alert firing again after it was resolved reopens its ticket
        if ticket_id is None:
            if action == "resolve":
                return Ignore("event", f"{event!r}: no ticket {record.external_id!r} to resolve")
            return Refuse(f"event {event!r} is a comment on ticket {record.external_id!r}, which the hub does not know")
        if action == "resolve":
            return MakeTicket()
        return AddComment(ticket_id, matched_by=self.events.identity)

    def _tickets(self, conn: Connection, external_ids: set[str]) -> dict[str, tuple[int, str]]:
        """external id → (ticket id, status) for the identities the hub knows."""
        rows = conn.execute(
            select(external_refs.c.external_id, tickets.c.id, tickets.c.status)
            .join(tickets, tickets.c.id == external_refs.c.ticket_id)
            .where(external_refs.c.system == self.system, one_of(conn, external_refs.c.external_id, external_ids))
        )
        return {external_id: (ticket_id, status) for external_id, ticket_id, status in rows}

    def record(self, conn: Connection, items: Sequence[Triaged]) -> list[Change]:
        """The comments events add (a repeat, a `comment` event, a new ticket's first comment), once per delivery."""
        with_comments = []
        for item in items:
            template = None
            if isinstance(item.disposition, AddComment):
                template = self.comment
            elif isinstance(item.disposition, MakeTicket) and item.created:
                template = self.first_comment
            body = template.render(**item.decoded).strip() if template is not None else ""
            comments = [{"external_id": f"delivery/{item.decoded['delivery']}", "body": body, "public": False,
                         "author": self.system}] if body else []  # fmt: skip
            with_comments.append(dataclasses.replace(item, decoded={**item.decoded, "comments": comments}))
        return super().record(conn, with_comments)
