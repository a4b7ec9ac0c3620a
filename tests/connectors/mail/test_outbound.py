"""The hub's own mail, rendered and sent through a real SMTP server (aiosmtpd) on loopback."""

import pytest
from pydantic import ValidationError

from connectors.mail.outbound import OutgoingMail, render_acknowledgement, send_mail
from itsm_core.config import SmtpConfig
from itsm_core.errors import SmtpUnavailable
from tests.support.smtp_sink import SmtpSink


def ack(to: str = "ann@northwind.example", kind="created", title="VPN down") -> OutgoingMail:
    return render_acknowledgement(
        kind,
        ticket_number="T-000042",
        title=title,
        requester_name="Ann",
        requester=to,
        token="[#T-000042]",
        from_domain="northwind.example",
        in_reply_to="req-1@northwind.example",
        references=["r0@northwind.example", "req-1@northwind.example"],
        solution="Restarted the VPN gateway." if kind == "resolved" else None,
    )


def settings(port: int) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=port, security="plain", from_address="helpdesk@northwind.example")


@pytest.mark.parametrize("kind", ["created", "resolved", "closed"])
def test_each_acknowledgement_names_the_ticket_and_threads(kind):
    mail = ack(kind=kind)
    assert mail.subject == "[#T-000042] Re: VPN down"
    assert "T-000042" in mail.text and "Ann" in mail.text
    assert mail.message_id.endswith("@northwind.example")
    assert (mail.in_reply_to, mail.references) == (
        "req-1@northwind.example",
        ["r0@northwind.example", "req-1@northwind.example"],
    )
    if kind == "resolved":
        assert "Restarted the VPN gateway." in mail.text


def test_re_is_not_stacked():
    assert ack(title="Re: VPN down").subject == "[#T-000042] Re: VPN down"


def test_a_batch_arrives_with_the_loop_guard_headers_and_a_refused_recipient_fails_alone():
    with SmtpSink(refuse={"gone@northwind.example"}) as sink:
        results = send_mail(settings(sink.port), [ack(), ack("gone@northwind.example"), ack("bob@northwind.example")])
        assert [r.ok for r in results] == [True, False, True]
        assert "550" in results[1].error
        first, second = sink.messages
    assert first["Auto-Submitted"] == "auto-replied" and first["X-Auto-Response-Suppress"] == "All"
    assert first["In-Reply-To"] == "<req-1@northwind.example>"
    assert first["References"] == "<r0@northwind.example> <req-1@northwind.example>"
    assert first["From"] == "IT Service Desk <helpdesk@northwind.example>"
    assert second["To"] == "bob@northwind.example"


def test_an_unreachable_server_raises_without_the_password():
    config = settings(9).model_copy(update={"username": "hub", "password": "smtp-secret"})
    with pytest.raises(SmtpUnavailable) as caught:
        send_mail(config, [ack()])
    assert "127.0.0.1:9" in str(caught.value) and "smtp-secret" not in str(caught.value)


def test_header_injection_is_refused():
    with pytest.raises(ValidationError, match="one line"):
        OutgoingMail(to=["a@b"], subject="hi\r\nBcc: victim@x", text="", message_id="m@x")
