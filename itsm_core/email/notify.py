"""Mail the hub sends about tickets that came by mail: the outbox payloads, and the push target for status news.

Payload (outbox `fields` for target "email"): ``{"kind": created|resolved|closed|refused|question, "to": [address],
"requester_name", "in_reply_to", "references": [...], "text"}`` (`text`: what an automation asks);
`flows/outbound.py` renders and sends it.
Only tickets the hub received by mail are told of their resolution and closure: tickets from GLPI or Solman
have their own notifications there, and two mails for one event would be noise.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import Connection, select

from itsm_core.config import EmailConfig
from itsm_core.models import TicketStatus
from itsm_core.store.bulk import one_of
from itsm_core.store.tables import MailMessageRow, TicketRow
from itsm_core.sync.propagate import Change, OutboxItem

#: The outbox target for the hub's own mail.
EMAIL_TARGET = "email"
#: Status changes the requester is told of.
ANNOUNCED = {TicketStatus.RESOLVED.value: "resolved", TicketStatus.CLOSED.value: "closed"}

tickets = TicketRow.__table__
mail_messages = MailMessageRow.__table__


def mail_payload(
    kind: str, to: str, *, requester_name: str | None, thread: Sequence[str], **extra: Any
) -> dict[str, Any]:
    """An outbox payload answering the latest message of `thread` (Message-IDs, oldest first)."""
    return {
        "kind": kind,
        "to": [to],
        "requester_name": requester_name,
        "in_reply_to": thread[-1] if thread else None,
        "references": list(thread),
        **extra,
    }


class EmailNotifier:
    """Push target "email": tells the requester of a ticket that came by mail when it is resolved or closed."""

    name = EMAIL_TARGET

    def __init__(self, config: EmailConfig) -> None:
        self.enabled = config.acknowledge and config.smtp is not None

    def plan(self, conn: Connection, changes: Sequence[Change]) -> list[OutboxItem]:
        wanted = {c.ticket_id for c in changes if "status" in c.fields}
        if not self.enabled or not wanted:
            return []
        return requester_mails(conn, wanted, lambda row: ANNOUNCED.get(row.status))


def requester_mails(
    conn: Connection, ticket_ids: Collection[int], kind: Callable[[Any], str | None], **extra: Any
) -> list[OutboxItem]:
    """A mail payload (of the `kind` a ticket row calls for; None: no mail) to the requester of each of these
    tickets that came by mail, answering its thread. Tickets from GLPI or Solman are told by their own system."""
    t = tickets.c
    query = select(t.id, t.status, t.requester, t.requester_name, t.custom_fields)
    rows = conn.execute(query.where(one_of(conn, t.id, ticket_ids))).all()
    threads = _threads(conn, [row.id for row in rows])
    items: list[OutboxItem] = []
    for row in rows:
        thread, received = threads.get(row.id, ([], False))
        chosen = kind(row)
        if not received or not row.requester or chosen is None:
            continue
        reply_to = (row.custom_fields or {}).get("reply_to") or [row.requester]
        payload = mail_payload(chosen, reply_to[0], requester_name=row.requester_name, thread=thread, **extra)
        items.append((row.id, payload))
    return items


def _threads(conn: Connection, ticket_ids: list[int]) -> dict[int, tuple[list[str], bool]]:
    """Per ticket: its Message-IDs received and sent, oldest first, and whether any was received."""
    if not ticket_ids:
        return {}
    query = (
        select(mail_messages.c.ticket_id, mail_messages.c.message_id, mail_messages.c.direction)
        .where(one_of(conn, mail_messages.c.ticket_id, ticket_ids))
        .order_by(mail_messages.c.at, mail_messages.c.id)
    )
    threads: dict[int, tuple[list[str], bool]] = {}
    for ticket_id, message_id, direction in conn.execute(query):
        ids, received = threads.get(ticket_id, ([], False))
        ids.append(message_id)
        threads[ticket_id] = (ids, received or direction == "in")
    return threads
