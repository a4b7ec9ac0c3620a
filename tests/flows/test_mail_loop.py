"""No mail loop, with both real servers: the hub acknowledges a new ticket over SMTP; the requester's
out-of-office answers that acknowledgement into the IMAP mailbox; the hub makes no ticket and sends nothing."""

import re
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from flows.cycle import hub_cycle
from itsm_core.store import Store
from itsm_core.store.tables import MailMessageRow, TicketRow
from tests.support.dovecot import deliver
from tests.support.smtp_sink import SmtpSink

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]


def test_an_out_of_office_reply_to_the_acknowledgement_ends_the_conversation(imap_hub):
    with SmtpSink() as sink:
        config = imap_hub.configure(
            "email:\n"
            "  hub_addresses: [helpdesk@northwind.example]\n"
            f"  smtp: {{host: 127.0.0.1, port: {sink.port}, security: plain,\n"
            "         from_address: helpdesk@northwind.example}\n"
        )
        request = EmailMessage()
        request["From"] = "Ann Example <ann@northwind.example>"
        request["To"] = "helpdesk@northwind.example"
        request["Subject"] = "VPN down"
        request["Message-ID"] = "<req-1@northwind.example>"
        request.set_content("The VPN is down since 9:00.")
        deliver(imap_hub.server, bytes(request))

        assert hub_cycle(config_path=config)["helpdesk"]["created"] == 1
        (ack,) = sink.messages
        assert ack["To"] == "ann@northwind.example"
        assert re.fullmatch(r"\[#T-000001-[a-z2-7]{6}\] Re: VPN down", ack["Subject"])
        assert ack["In-Reply-To"] == "<req-1@northwind.example>"
        assert ack["Auto-Submitted"] == "auto-replied"
        assert "T-000001" in ack.get_content()

        ooo = EmailMessage()
        ooo["From"] = "Ann Example <ann@northwind.example>"
        ooo["To"] = "helpdesk@northwind.example"
        ooo["Subject"] = f"Automatic reply: {ack['Subject']}"
        ooo["Message-ID"] = "<ooo-1@northwind.example>"
        ooo["In-Reply-To"] = ack["Message-ID"]
        ooo["Auto-Submitted"] = "auto-replied"
        ooo.set_content("I am out of the office until Monday.")
        deliver(imap_hub.server, bytes(ooo))

        second = hub_cycle(config_path=config)["helpdesk"]
        assert (second["fetched"], second["created"], second["commented"], second["ignored"]) == (1, 0, 0, 1)
        assert len(sink.messages) == 1  # no answer to the out-of-office: no loop
        third = hub_cycle(config_path=config)["helpdesk"]
        assert third["fetched"] == 0 and len(sink.messages) == 1

        store = Store(imap_hub.url)
        with store.connect() as conn:
            assert conn.execute(select(func.count()).select_from(TicketRow)).scalar_one() == 1
            sent = conn.execute(select(MailMessageRow.message_id).where(MailMessageRow.direction == "out"))
            assert [f"<{m}>" for m in sent.scalars()] == [ack["Message-ID"]]
        store.dispose()
