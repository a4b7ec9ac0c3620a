"""Draining the outbox: the hub's own mail through SMTP, and operations for linked systems through their writers.

Mail is at least once: a crash between the SMTP hand-over and `mark_sent` sends that mail again on the next run.
Every sent Message-ID is recorded with its ticket, so replies thread and bounces find their ticket.

Linked systems get one operation at a time, in outbox order, each committed with what the system now holds
(`pushed_values` for echo suppression, the identity of a new comment), so the next pull recognises the hub's
own changes instead of bouncing them back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from connectors.base import SourceWriter
from connectors.mail.outbound import OutgoingMail, render_acknowledgement, send_mail
from itsm_core.config import EmailConfig
from itsm_core.email.notify import EMAIL_TARGET, requester_mails
from itsm_core.email.threads import reply_key, ticket_token_number
from itsm_core.errors import (
    ConfigError,
    SmtpUnavailable,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRejected,
)
from itsm_core.models import utcnow
from itsm_core.store import Store
from itsm_core.store.bulk import insert_ignoring_conflicts, one_of
from itsm_core.store.outbox import claim_due, mark_failed, mark_sent, release
from itsm_core.store.tables import MailMessageRow, TicketRow
from itsm_core.store.tickets import format_ticket_id
from itsm_core.sync.conflicts import remember_pushed
from itsm_core.sync.related import remember_comment_ids

log = logging.getLogger("itsm.flows.outbound")
tickets = TicketRow.__table__


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0  # to retry later
    refused: int = 0  # refused for good by the target: dead letters now

    def __iadd__(self, other: DeliveryReport) -> DeliveryReport:
        self.sent, self.failed, self.refused = (
            self.sent + other.sent,
            self.failed + other.failed,
            self.refused + other.refused,
        )
        return self

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.refused


#: The target refused the operation itself: sending it again would get the same answer.
REFUSALS = (UpstreamRejected, UpstreamNotFound, UpstreamForbidden, ValueError)


def deliver_linked(store: Store, target: str, writer: SourceWriter, limit: int = 200) -> DeliveryReport:
    """Send up to `limit` operations due for the linked system `target`, one by one, in outbox order.

    Sent → marked sent, with what the system now holds, in one transaction. Refused (`REFUSALS`) → a dead
    letter at once, with the system's reason. Anything else (the system down, the hub's login refused) → retried
    later with backoff, and the page stops there: the rest waits without spending its attempts.

    An update sends the ticket's current values of its fields, not those at the time of the change: an operation
    retried after a later one never puts an older value back.
    """
    with store.transaction() as conn:
        rows = claim_due(conn, target, limit)
    with store.connect() as conn:
        ticket_ids = {r["ticket_id"] for r in rows if r["fields"].get("op") == "update"}
        current = {
            row["id"]: row
            for row in conn.execute(select(tickets).where(one_of(conn, tickets.c.id, ticket_ids))).mappings()
        }

    def send(row: dict[str, Any]) -> Callable[[Connection], None]:
        operation = dict(row["fields"])
        if operation.get("op") == "update" and row["ticket_id"] in current:
            operation["fields"] = {name: current[row["ticket_id"]][name] for name in operation["fields"]}
        sent = writer.send(operation)

        def remember(conn: Connection) -> None:
            remember_pushed(conn, target, [(row["ticket_id"], k, v) for k, v in sent.fields.items()], utcnow())
            if sent.comment_ref is not None:
                remember_comment_ids(conn, target, [(sent.comment_ref, operation["comment_id"])])

        return remember

    return _send_in_order(store, target, rows, send)


def _send_in_order(
    store: Store,
    target: str,
    rows: list[dict[str, Any]],
    send: Callable[[dict[str, Any]], Callable[[Connection], None] | None],
) -> DeliveryReport:
    """Send claimed `rows` one by one, in outbox order. Sent → marked sent (with what `send` returns to write in
    the same transaction); refused (`REFUSALS`) → a dead letter at once; anything else → retried later with
    backoff, and the rest of the page is given back unsent, without spending its attempts."""
    report = DeliveryReport()
    for position, row in enumerate(rows):
        try:
            after = send(row)
        except REFUSALS as exc:
            with store.transaction() as conn:
                mark_failed(conn, row, str(exc), final=True)
            report.refused += 1
            log.warning("%s refused outbox item %d: %s; it is a dead letter now", target, row["id"], exc)
            continue
        except UpstreamError as exc:
            with store.transaction() as conn:
                mark_failed(conn, row, str(exc))
                release(conn, [later["id"] for later in rows[position + 1 :]])
            report.failed += 1
            log.warning("%s: %s; the rest of its outbox waits for the next push", target, exc)
            break
        with store.transaction() as conn:
            mark_sent(conn, [row["id"]])
            if after is not None:
                after(conn)
        report.sent += 1
    return report


def deliver_email(store: Store, config: EmailConfig, limit: int = 200) -> DeliveryReport:
    """Send up to `limit` mails due in the email outbox; returns how many went out and how many will be retried."""
    report = DeliveryReport()
    smtp = config.smtp
    if smtp is None:
        return report
    with store.transaction() as conn:
        rows = claim_due(conn, EMAIL_TARGET, limit)
    with store.connect() as conn:
        key = reply_key(conn)
        query = select(tickets.c.id, tickets.c.title).where(one_of(conn, tickets.c.id, [r["ticket_id"] for r in rows]))
        titles = {ticket_id: title for ticket_id, title in conn.execute(query)}
    if not rows:
        return report
    domain = smtp.from_address.rpartition("@")[2]
    mails = [_render(config, key, domain, row["ticket_id"], titles, row["fields"]) for row in rows]
    try:
        results = send_mail(smtp, mails)
    except SmtpUnavailable as exc:
        with store.transaction() as conn:
            for row in rows:
                mark_failed(conn, row, str(exc))
        report.failed = len(rows)
        log.warning("no mail sent: %s; will retry", exc)
        return report
    with store.transaction() as conn:
        sent_ids = []
        for row, result in zip(rows, results, strict=True):
            if result.ok:
                sent_ids.append(row["id"])
            else:
                mark_failed(conn, row, result.error or "refused")
        mark_sent(conn, sent_ids)
        sent = [(row["ticket_id"], mail) for row, mail, r in zip(rows, mails, results, strict=True) if r.ok]
        remember_sent(conn, sent, EMAIL_TARGET)
    report.sent, report.failed = len(sent_ids), len(rows) - len(sent_ids)
    return report


def _render(
    config: EmailConfig, key: bytes, domain: str, ticket_id: int | None, titles: dict[int, str], fields: dict[str, Any]
) -> OutgoingMail:
    """The mail of an email payload (`itsm_core/email/notify.py`), threaded, with the ticket's reply token."""
    number = format_ticket_id(ticket_id) if ticket_id is not None else None
    return render_acknowledgement(
        fields["kind"],
        ticket_number=number,
        title=titles.get(ticket_id, fields.get("subject", "")) if ticket_id is not None else fields.get("subject", ""),
        requester_name=fields.get("requester_name"),
        requester=fields["to"][0],
        token=config.ticket_token.format(number=ticket_token_number(key, ticket_id)) if ticket_id is not None else "",
        from_domain=domain,
        in_reply_to=fields.get("in_reply_to"),
        references=fields.get("references") or [],
        solution=fields.get("solution"),
        reason=fields.get("reason"),
        text=fields.get("text"),
    )


def remember_sent(conn: Connection, sent: list[tuple[int | None, OutgoingMail]], source: str) -> None:
    """Record the Message-IDs of mails sent for tickets, so replies thread and bounces find their ticket."""
    now = utcnow()
    messages = [
        {"message_id": mail.message_id, "direction": "out", "ticket_id": ticket_id, "address": mail.to[0].lower(),
         "source": source, "at": now}
        for ticket_id, mail in sent
    ]  # fmt: skip
    insert_ignoring_conflicts(conn, MailMessageRow.__table__, messages, ["direction", "message_id"])


def mail_requester_now(store: Store, config: EmailConfig, ticket_id: int, kind: str, text: str, source: str) -> bool:
    """Mail the requester of a ticket that came by mail at once, in its thread — for what must never rest in the
    store or the outbox (a one-time password). False when the ticket did not come by mail (nobody to mail);
    raises `SmtpUnavailable` (or `ConfigError` without `email.smtp`) when it could not be sent."""
    if config.smtp is None:
        raise ConfigError("email.smtp is not set: the hub cannot mail the requester; configure the SMTP relay")
    with store.connect() as conn:
        payloads = requester_mails(conn, [ticket_id], lambda row: kind)
        key = reply_key(conn)
        titles = dict(conn.execute(select(tickets.c.id, tickets.c.title).where(tickets.c.id == ticket_id)).all())
    if not payloads:
        return False
    mail = _render(
        config, key, config.smtp.from_address.rpartition("@")[2], ticket_id, titles, {**payloads[0][1], "text": text}
    )
    (result,) = send_mail(config.smtp, [mail])
    if not result.ok:
        raise SmtpUnavailable(f"the mail to the requester of {format_ticket_id(ticket_id)} was refused: {result.error}")
    with store.transaction() as conn:
        remember_sent(conn, [(ticket_id, mail)], source)
    return True


def deliver_alerts(
    store: Store, target: str, send: Callable[[dict[str, Any]], None], limit: int = 200
) -> DeliveryReport:
    """Send up to `limit` alerts due for one channel (`target` = ``alert:<channel>``), as `_send_in_order` does."""
    with store.transaction() as conn:
        rows = claim_due(conn, target, limit)
    return _send_in_order(store, target, rows, lambda row: send(row["fields"]))
