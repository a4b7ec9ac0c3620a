"""Resolution and closure notices for mail tickets, reopening on reply, and the per-ticket flood limit."""

import json

from itsm_core.config import EmailConfig
from itsm_core.email.intake import EmailIntake
from itsm_core.email.notify import EMAIL_TARGET, EmailNotifier
from itsm_core.mapping import load_mapping
from itsm_core.models import RawRecord, TicketStatus
from itsm_core.rules import Rules, RulesConfig
from itsm_core.store.outbox import due
from itsm_core.store.tickets import change_status, get_ticket, upsert_tickets
from itsm_core.sync.ingest import SourcePipeline, ingest_batch
from itsm_core.sync.propagate import HUB, Change, Propagator
from tests.itsm_core.email.test_intake import NOW, SMTP, mail


def pipeline(**email) -> SourcePipeline:
    config = EmailConfig(smtp=SMTP, **email)
    return SourcePipeline(
        "mailbox",
        lambda payload: json.loads(payload),
        load_mapping("email"),
        Rules(RulesConfig()),
        intake=EmailIntake(config, "mailbox", now=lambda: NOW),
        propagator=Propagator((EmailNotifier(config),)),
    )


def run(store, *records, **email):
    with store.transaction() as conn:
        return ingest_batch(conn, pipeline(**email), list(records))


def set_status(store, ticket_id, status, **email):
    with store.transaction() as conn:
        change_status(conn, ticket_id, status, "user:test")
        propagator = Propagator((EmailNotifier(EmailConfig(smtp=SMTP, **email)),))
        return propagator.propagate(conn, [Change(ticket_id, frozenset({"status"}), origin=HUB)])


def notices(store):
    with store.connect() as conn:
        return [row["fields"] for row in due(conn, EMAIL_TARGET) if row["fields"]["kind"] != "created"]


def test_resolving_a_mail_ticket_queues_a_notice_threaded_under_the_mail(store):
    run(store, mail("m1@x", reply_to=["team@northwind.example"], references=["r0@x"]))
    assert set_status(store, 1, TicketStatus.RESOLVED) == {EMAIL_TARGET: 1}
    (notice,) = notices(store)
    assert notice["kind"] == "resolved" and notice["to"] == ["team@northwind.example"]
    assert notice["in_reply_to"] == "m1@x"


def test_closing_queues_a_closed_notice_and_other_changes_none(store):
    run(store, mail("m1@x"))
    assert set_status(store, 1, TicketStatus.IN_PROGRESS) == {}
    set_status(store, 1, TicketStatus.RESOLVED)
    set_status(store, 1, TicketStatus.CLOSED)
    assert [n["kind"] for n in notices(store)] == ["resolved", "closed"]


def test_no_notice_when_acknowledgements_are_off(store):
    run(store, mail("m1@x"))
    assert set_status(store, 1, TicketStatus.RESOLVED, acknowledge=False) == {}


def test_a_ticket_that_did_not_come_by_mail_gets_no_notice(store):
    ticket = pipeline().to_ticket(
        RawRecord("g1", json.dumps({"subject": "x", "from_address": "a@b"}).encode(), "json", NOW)
    )
    with store.transaction() as conn:
        upsert_tickets(conn, "glpi", "source:glpi", [ticket])
    assert set_status(store, 1, TicketStatus.RESOLVED) == {}


def test_a_notice_is_not_sent_back_to_the_system_the_change_came_from(store):
    run(store, mail("m1@x"))
    with store.transaction() as conn:
        change_status(conn, 1, TicketStatus.RESOLVED, "source:x")
        queued = Propagator((EmailNotifier(EmailConfig(smtp=SMTP)),)).propagate(
            conn, [Change(1, frozenset({"status"}), origin=EMAIL_TARGET)]
        )
    assert queued == {}


def test_a_reply_to_a_resolved_ticket_reopens_it_with_an_audit_event(store):
    run(store, mail("m1@x"))
    set_status(store, 1, TicketStatus.RESOLVED)
    assert run(store, mail("m2@x", "Re: Printer broken", in_reply_to="m1@x")).commented == 1
    with store.connect() as conn:
        ticket = get_ticket(conn, 1)
    assert ticket["status"] == "in_progress" and ticket["resolved_at"] is None
    assert ticket["audit"][-1]["new_value"] == "in_progress" and ticket["audit"][-1]["actor"] == "source:mailbox"


def test_a_reply_to_an_open_ticket_leaves_its_status(store):
    run(store, mail("m1@x"))
    set_status(store, 1, TicketStatus.PENDING)
    run(store, mail("m2@x", "Re: Printer broken", in_reply_to="m1@x"))
    with store.connect() as conn:
        assert get_ticket(conn, 1)["status"] == "pending"


def test_more_replies_to_one_ticket_than_the_limit_are_quarantined(store):
    run(store, mail("m1@x"))
    replies = [
        mail(f"r{i}@x", "Re: Printer broken", sender=f"user{i}@northwind.example", in_reply_to="m1@x") for i in range(5)
    ]
    report = run(store, *replies, flood_per_ticket=3)
    assert (report.commented, report.quarantined) == (2, 3)  # the mail that opened the ticket counts too
    assert all("mails to ticket T-000001" in n.reason for n in report.notes)
    # the window still holds three mails to the ticket: the next one is refused too
    assert (
        run(
            store, mail("r9@x", "Re: x", sender="z@northwind.example", in_reply_to="m1@x"), flood_per_ticket=3
        ).quarantined
        == 1
    )


def test_an_oversize_mail_is_quarantined_and_its_sender_told_once(store):
    reason = "message of 40000000 bytes exceeds max_message_bytes (26214400); only its headers were kept"
    big = mail("big@x", "Scans", reply_to=["ann.private@example.org"], oversize={"size": 40_000_000, "reason": reason})
    report = run(store, big)
    assert (report.created, report.quarantined) == (0, 1) and report.notes[0].reason == reason
    with store.connect() as conn:
        (row,) = due(conn, EMAIL_TARGET)
    assert row["ticket_id"] is None
    assert row["fields"]["kind"] == "refused" and row["fields"]["to"] == ["ann.private@example.org"]
    assert row["fields"]["reason"] == reason and row["fields"]["in_reply_to"] == "big@x"
    assert run(store, big).unchanged == 1  # fetched again: landed before, nobody told twice
    with store.connect() as conn:
        assert len(due(conn, EMAIL_TARGET)) == 1


def test_an_oversize_auto_reply_is_ignored_not_answered(store):
    noise = {"kind": "autoreply", "reason": "Auto-Submitted: auto-replied", "original_message_id": None}
    report = run(store, mail("big@x", oversize={"size": 1, "reason": "too big"}, noise=noise))
    assert report.ignored == 1
    with store.connect() as conn:
        assert due(conn, EMAIL_TARGET) == []


def test_the_refusal_notice_renders_without_a_ticket():
    from connectors.mail.outbound import render_acknowledgement

    notice = render_acknowledgement(
        "refused",
        ticket_number=None,
        title="Scans",
        requester_name="Ann",
        requester="ann@northwind.example",
        token="",
        from_domain="northwind.example",
        in_reply_to="big@x",
        references=[],
        reason="message of 40000000 bytes exceeds max_message_bytes (26214400)",
    )
    assert notice.subject == "Re: Scans" and notice.in_reply_to == "big@x"
    assert "40000000 bytes exceeds" in notice.text and "No ticket was opened" in notice.text
