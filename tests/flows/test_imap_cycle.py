"""200 varied messages in a real Dovecot mailbox become the right tickets and comments, once."""

from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from flows.cycle import hub_cycle
from itsm_core.store import Store
from itsm_core.store.tables import CommentRow, TicketRow
from tests.support.dovecot import deliver

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]


def message(i: int, subject: str, **headers: str) -> bytes:
    m = EmailMessage()
    m["From"] = headers.pop("From", f"Person {i % 37} <person{i % 37}@northwind.example>")
    m["To"] = "helpdesk@northwind.example"
    m["Subject"] = subject
    m["Message-ID"] = f"<msg{i}@northwind.example>"
    for name, value in headers.items():
        m[name.replace("_", "-")] = value
    m.set_content(f"Message {i}.\n\nOn Monday someone wrote:\n> earlier text\n")
    return bytes(m)


def corpus() -> list[bytes]:
    """120 new requests, 40 replies by In-Reply-To, 10 by subject token (from each ticket's requester: a bare
    token from anyone else only mentions the ticket), 20 auto-replies, 10 bounces."""
    mails = [message(i, f"Request {i}: laptop slow") for i in range(120)]
    mails += [message(200 + i, f"Re: Request {i}", In_Reply_To=f"<msg{i}@northwind.example>") for i in range(40)]
    requester = [f"Person {i % 37} <person{i % 37}@northwind.example>" for i in range(10)]
    mails += [message(300 + i, f"More on [#T-{i + 1:06d}]", From=requester[i]) for i in range(10)]
    mails += [message(400 + i, "Out of office", Auto_Submitted="auto-replied") for i in range(20)]
    mails += [
        message(500 + i, "Undelivered Mail", Return_Path="<>", From="MAILER-DAEMON@mx.northwind.example")
        for i in range(10)
    ]
    return mails


def test_two_hundred_messages_from_dovecot_then_nothing_new(imap_hub):
    deliver(imap_hub.server, *corpus())
    config = imap_hub.configure(page_size=50)
    first = hub_cycle(config_path=config)["helpdesk"]
    assert first == {
        "fetched": 200, "created": 120, "updated": 0, "unchanged": 0, "commented": 50, "ignored": 30,
        "quarantined": 0,
    }  # fmt: skip
    second = hub_cycle(config_path=config)["helpdesk"]
    assert second["fetched"] == 0  # the watermark: nothing re-read

    store = Store(imap_hub.url)
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(TicketRow)).scalar_one() == 120
        per_ticket = dict(conn.execute(select(CommentRow.ticket_id, func.count()).group_by(CommentRow.ticket_id)).all())
        bodies = set(conn.execute(select(CommentRow.body)).scalars())
    assert sum(per_ticket.values()) == 50
    assert all(per_ticket[t] == 2 for t in range(1, 11)) and all(per_ticket[t] == 1 for t in range(11, 41))
    assert "earlier text" not in " ".join(bodies)  # quoted history cut
    store.dispose()
