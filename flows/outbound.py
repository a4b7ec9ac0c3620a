"""Draining the outbox of the hub's own mail (acknowledgements) through SMTP, one connection per batch.

At least once: a crash between the SMTP hand-over and `mark_sent` sends that mail again on the next run.
Every sent Message-ID is recorded with its ticket, so replies thread and bounces find their ticket.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from connectors.mail.outbound import OutgoingMail, render_acknowledgement, send_mail
from itsm_core.config import EmailConfig
from itsm_core.email.notify import EMAIL_TARGET
from itsm_core.errors import SmtpUnavailable
from itsm_core.models import utcnow
from itsm_core.store import Store
from itsm_core.store.bulk import insert_ignoring_conflicts
from itsm_core.store.outbox import due, mark_failed, mark_sent
from itsm_core.store.tables import MailMessageRow, TicketRow
from itsm_core.store.tickets import format_ticket_id

log = logging.getLogger("itsm.flows.outbound")
tickets = TicketRow.__table__


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0


def deliver_email(store: Store, config: EmailConfig, limit: int = 200) -> DeliveryReport:
    """Send up to `limit` mails due in the email outbox; returns how many went out and how many will be retried."""
    report = DeliveryReport()
    smtp = config.smtp
    if smtp is None:
        return report
    with store.connect() as conn:
        rows = due(conn, EMAIL_TARGET, limit)
        query = select(tickets.c.id, tickets.c.title).where(tickets.c.id.in_([r["ticket_id"] for r in rows]))
        titles = {ticket_id: title for ticket_id, title in conn.execute(query)}
    if not rows:
        return report
    domain = smtp.from_address.rpartition("@")[2]
    mails: list[OutgoingMail] = []
    for row in rows:
        fields = row["fields"]
        number = format_ticket_id(row["ticket_id"]) if row["ticket_id"] is not None else None
        mails.append(
            render_acknowledgement(
                fields["kind"],
                ticket_number=number,
                title=titles.get(row["ticket_id"], fields.get("subject", "")),
                requester_name=fields.get("requester_name"),
                requester=fields["to"][0],
                token=config.ticket_token.format(number=number) if number else "",
                from_domain=domain,
                in_reply_to=fields.get("in_reply_to"),
                references=fields.get("references") or [],
                solution=fields.get("solution"),
                reason=fields.get("reason"),
            )
        )
    try:
        results = send_mail(smtp, mails)
    except SmtpUnavailable as exc:
        with store.transaction() as conn:
            for row in rows:
                mark_failed(conn, row, str(exc))
        report.failed = len(rows)
        log.warning("no mail sent: %s; will retry", exc)
        return report
    now = utcnow()
    with store.transaction() as conn:
        sent_ids, messages = [], []
        for row, mail, result in zip(rows, mails, results, strict=True):
            if result.ok:
                sent_ids.append(row["id"])
                messages.append(
                    {
                        "message_id": mail.message_id,
                        "direction": "out",
                        "ticket_id": row["ticket_id"],
                        "address": mail.to[0].lower(),
                        "source": EMAIL_TARGET,
                        "at": now,
                    }
                )
            else:
                mark_failed(conn, row, result.error or "refused")
        mark_sent(conn, sent_ids)
        insert_ignoring_conflicts(conn, MailMessageRow.__table__, messages, ["direction", "message_id"])
    report.sent, report.failed = len(sent_ids), len(rows) - len(sent_ids)
    return report
