"""The email channel's decisions on a real store: threading, noise, duplicates, floods, watchers, acknowledgements."""

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from itsm_core.config import EmailConfig, SmtpConfig
from itsm_core.email.intake import EmailIntake
from itsm_core.email.notify import EMAIL_TARGET
from itsm_core.email.threads import token_pattern
from itsm_core.mapping import load_mapping
from itsm_core.models import RawRecord
from itsm_core.rules import Rules, RulesConfig
from itsm_core.store.outbox import due
from itsm_core.store.tables import CommentRow, ExternalRefRow, MailMessageRow, TicketWatcherRow
from itsm_core.store.tickets import count_tickets, get_ticket
from itsm_core.sync.ingest import SourcePipeline, ingest_batch

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SMTP = SmtpConfig(host="127.0.0.1", security="plain", from_address="helpdesk@northwind.example")


def pipeline(**email) -> SourcePipeline:
    config = EmailConfig(smtp=SMTP, **email)
    return SourcePipeline(
        "mailbox",
        lambda payload: json.loads(payload),
        load_mapping("email"),
        Rules(RulesConfig()),
        intake=EmailIntake(config, "mailbox", now=lambda: NOW),
    )


def mail(message_id: str, subject: str = "Printer broken", sender: str = "ann@northwind.example", **extra) -> RawRecord:
    body = {
        "message_id": message_id,
        "subject": subject,
        "from_address": sender,
        "from_name": "Ann",
        "text": "It jams.\n\nOn Monday Bob wrote:\n> old text",
        "reply_text": "It jams.",
        "to": ["helpdesk@northwind.example"],
        "cc": [],
        "reply_to": [],
        "references": [],
        "in_reply_to": None,
        "attachments": [],
        "noise": None,
        **extra,
    }
    return RawRecord(message_id, json.dumps(body).encode(), "eml", NOW)


def run(store, *records, **email):
    with store.transaction() as conn:
        return ingest_batch(conn, pipeline(**email), list(records))


def test_a_reply_by_in_reply_to_becomes_a_comment_with_the_original_attached(store):
    run(store, mail("m1@x"))
    report = run(store, mail("m2@x", "Re: Printer broken", in_reply_to="m1@x", references=["m1@x"]))
    assert (report.created, report.commented) == (0, 1)
    with store.connect() as conn:
        ticket = get_ticket(conn, 1)
        assert count_tickets(conn) == 1
    (comment,) = ticket["comments"]
    assert comment["body"] == "It jams." and comment["author"] == "Ann <ann@northwind.example>"
    assert [a["name"] for a in ticket["attachments"]] == ["original.eml"]


def test_reply_all_from_a_cc_person_threads_by_references(store):
    run(store, mail("m1@x", cc=["carl@northwind.example", "helpdesk@northwind.example"]))
    with store.connect() as conn:
        assert conn.execute(select(TicketWatcherRow.address)).scalars().all() == ["carl@northwind.example"]
    reply_all = mail("m3@x", "RE: AW: Printer", sender="carl@northwind.example", references=["zz@y", "m1@x"],
                     cc=["Ann@Northwind.example", "dora@northwind.example"])  # fmt: skip
    forwarded = mail("m4@x", "Re: Printer", sender="erin@northwind.example", in_reply_to="m1@x")  # "me too"
    report = run(store, reply_all, forwarded)
    assert report.commented == 2
    with store.connect() as conn:  # whoever writes on the thread follows it; never the requester, never the hub
        watching = conn.execute(select(TicketWatcherRow.address).order_by(TicketWatcherRow.address)).scalars().all()
    assert watching == ["carl@northwind.example", "dora@northwind.example", "erin@northwind.example"]


def test_a_reply_to_the_hubs_own_mail_threads(store):
    run(store, mail("m1@x"))
    with store.transaction() as conn:
        conn.execute(
            MailMessageRow.__table__.insert(),
            [{"message_id": "ack-1@hub", "direction": "out", "ticket_id": 1, "source": "mailbox", "at": NOW}],
        )
    assert run(store, mail("m4@x", "Re: [#T-000001] Printer broken", in_reply_to="ack-1@hub")).commented == 1


def test_the_subject_token_threads_when_headers_are_lost(store):
    run(store, mail("m1@x"))
    assert run(store, mail("m5@x", "Fwd: [#T-000001] more info")).commented == 1
    assert run(store, mail("m6@x", "[#T-000999] no such ticket")).created == 1


def test_a_strangers_bare_token_makes_a_new_ticket_that_mentions_the_other(store):
    """Ticket numbers are sequential: `[#T-000001]` alone proves nothing about who writes."""
    run(store, mail("m1@x", cc=["colleague@northwind.example"]))
    report = run(store, mail("s1@x", "Re: [#T-000001] I want in", sender="mallory@evil.example"))
    assert (report.created, report.commented) == (1, 0)
    with store.connect() as conn:
        first, second = get_ticket(conn, 1), get_ticket(conn, 2)
    assert first["comments"] == [] and first["watchers"] == ["colleague@northwind.example"]  # nobody joined
    assert second["custom_fields"]["mentions"] == ["T-000001"] and second["requester"] == "mallory@evil.example"
    # a watcher (CC'd on the first mail) and the requester are on the ticket: their bare token threads
    assert run(store, mail("c1@x", "[#T-000001] me too", sender="colleague@northwind.example")).commented == 1


def test_the_token_with_the_tickets_secret_threads_from_anyone(store):
    """The hub's mails carry [#T-000001-secret]: whoever got one (a forward) may answer on the ticket."""
    from itsm_core.email.threads import reply_key, ticket_secret

    run(store, mail("m1@x"))
    with store.connect() as conn:
        secret = ticket_secret(reply_key(conn), 1)
    wrong = "a" * len(secret) if secret != "a" * len(secret) else "b" * len(secret)
    assert run(store, mail("f1@x", f"Fwd: [#T-000001-{wrong}] x", sender="dave@partner.example")).created == 1
    report = run(store, mail("f2@x", f"Re: [#T-000001-{secret.upper()}] x", sender="dave@partner.example"))
    assert report.commented == 1


def test_a_linked_systems_number_threads(store):
    run(store, mail("m1@x"))
    with store.transaction() as conn:
        conn.execute(
            ExternalRefRow.__table__.insert(),
            [{"system": "glpi", "external_id": "4711", "ticket_id": 1, "created_at": NOW, "updated_at": NOW}],
        )
    report = run(
        store, mail("m7@x", "GLPI ticket 4711: update"), external_number_patterns={"glpi": r"GLPI ticket (\d+)"}
    )
    assert report.commented == 1


def test_a_reply_in_the_same_batch_as_its_original_threads(store):
    report = run(store, mail("m1@x"), mail("m2@x", "Re: Printer broken", in_reply_to="m1@x"))
    assert (report.created, report.commented) == (1, 1)


def test_noise_own_mail_and_duplicates_make_nothing(store):
    autoreply = {"kind": "autoreply", "reason": "Auto-Submitted: auto-replied", "original_message_id": None}
    report = run(
        store,
        mail("m1@x"),
        mail("m8@x", "Out of office", noise=autoreply),
        mail("m9@x", "loop", sender="HELPDESK@northwind.example"),
        mail("m1@x", "Printer broken (resent)"),  # same Message-ID, other bytes
    )
    assert report.counts() == {
        "fetched": 4, "created": 1, "updated": 0, "unchanged": 1, "commented": 0, "ignored": 2, "quarantined": 0,
    }  # fmt: skip
    assert report.ignored_by_kind == {"autoreply": 1, "own": 1}
    with store.connect() as conn:
        assert len(due(conn, EMAIL_TARGET)) == 1  # one acknowledgement, for the real ticket only


def test_a_bounce_of_the_hubs_mail_is_noted_on_its_ticket(store):
    run(store, mail("m1@x"))
    with store.transaction() as conn:
        conn.execute(
            MailMessageRow.__table__.insert(),
            [{"message_id": "ack-1@hub", "direction": "out", "ticket_id": 1, "source": "mailbox", "at": NOW}],
        )
    bounce = {"kind": "bounce", "reason": "delivery failed: 550 no such user", "original_message_id": "ack-1@hub"}
    report = run(store, mail("b1@x", "Undelivered", sender="mailer-daemon@northwind.example", noise=bounce))
    assert report.ignored_by_kind == {"bounce": 1}
    with store.connect() as conn:
        (note,) = conn.execute(select(CommentRow.body, CommentRow.public)).all()
    assert "550 no such user" in note.body and note.public is False


def test_a_forged_bounce_citing_a_received_message_adds_no_note(store):
    """Anyone can write a DSN quoting a Message-ID they saw (a requester's own mail): only mail the hub sent counts."""
    run(store, mail("m1@x"))
    forged = {"kind": "bounce", "reason": "delivery failed: 550 gone", "original_message_id": "m1@x"}
    report = run(store, mail("b1@x", "Undelivered", sender="mailer-daemon@evil.example", noise=forged))
    assert report.ignored_by_kind == {"bounce": 1}
    with store.connect() as conn:
        assert conn.execute(select(CommentRow.body)).all() == []


def test_a_mail_carrying_the_hubs_address_in_x_loop_is_a_loop(store):
    report = run(
        store,
        mail("loop@x", "Re: your ticket", sender="robot@partner.example", x_loop=["helpdesk@northwind.example"]),
        mail("list@x", "Printer", sender="bob@northwind.example", x_loop=["list@lists.example"]),
    )
    assert (report.created, report.ignored_by_kind) == (1, {"loop": 1})  # another system's X-Loop is no loop of ours
    with store.connect() as conn:
        assert len(due(conn, EMAIL_TARGET)) == 1  # the loop is not acknowledged


def test_a_flood_from_one_sender_is_quarantined_beyond_the_limit(store):
    records = [mail(f"f{i}@x", f"Alert {i}") for i in range(5)]
    report = run(store, *records, flood_per_sender=3)
    assert (report.created, report.quarantined) == (3, 2)
    assert all(n.stage == "triage" and "flood" in n.reason for n in report.notes)
    # an hour later the window has moved on ... (the intake's clock is fixed here, so records stay within it)
    assert run(store, mail("f9@x", "Alert 9"), flood_per_sender=3).quarantined == 1


def test_acknowledgement_goes_to_reply_to_and_threads(store):
    run(store, mail("m1@x", reply_to=["team@northwind.example"], references=["r0@x"]))
    with store.connect() as conn:
        (row,) = due(conn, EMAIL_TARGET)
    assert row["fields"]["to"] == ["team@northwind.example"]
    assert row["fields"]["in_reply_to"] == "m1@x" and row["fields"]["references"] == ["r0@x", "m1@x"]


def test_no_acknowledgement_without_smtp_or_when_disabled(store):
    run(store, mail("m1@x"), acknowledge=False)
    with store.connect() as conn:
        assert due(conn, EMAIL_TARGET) == []


def test_token_pattern_follows_the_configured_format():
    assert token_pattern("[#{number}]").findall("Re: [#T-000123] x [#T-7-abc234]") == [("123", ""), ("7", "abc234")]
    assert token_pattern("(Ticket {number})").findall("AW: (Ticket T-000042)") == [("42", "")]
    assert token_pattern("[#{number}]").findall("[T-000123]") == []


def test_flood_window_counts_recent_mail_only(store):
    old = NOW - timedelta(minutes=30)
    with store.transaction() as conn:
        conn.execute(
            MailMessageRow.__table__.insert(),
            [
                {
                    "message_id": f"o{i}@x",
                    "direction": "in",
                    "address": "ann@northwind.example",
                    "source": "mailbox",
                    "at": old,
                }
                for i in range(10)
            ],
        )
    assert run(store, mail("n1@x"), flood_per_sender=3).created == 1
