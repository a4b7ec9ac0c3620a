"""The hub's own mail, rendered and sent through a real SMTP server (aiosmtpd) on loopback."""

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime

import pytest

from connectors.mail.outbound import (
    OutgoingMail,
    make_message_id,
    render_acknowledgement,
    send_mail,
    thread_references,
    to_email_message,
)
from itsm_core.config import SmtpConfig
from itsm_core.errors import ConfigError, SmtpUnavailable
from tests.support.net import free_port, self_signed_certificate
from tests.support.smtp_sink import SmtpSink

# The sink offers AUTH over plaintext on loopback on purpose; aiosmtpd warns about exactly that.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
USER, PASSWORD = "hub", "smtp-secret-7731"
HUB = "helpdesk@northwind.example"


def ack(to: str = "ann@northwind.example", kind="created", title="VPN down", **extra) -> OutgoingMail:
    return render_acknowledgement(
        kind,
        ticket_number="T-000042",
        title=title,
        requester_name="Ann",
        requester=to,
        token="[#T-000042]",
        from_domain="northwind.example",
        in_reply_to="req-1@northwind.example",
        references=["r0@northwind.example"],
        solution="Restarted the VPN gateway." if kind == "resolved" else None,
        **extra,
    )


def settings(port: int, **changes) -> SmtpConfig:
    return SmtpConfig(**({"host": "127.0.0.1", "port": port, "security": "plain", "from_address": HUB} | changes))


# --- rendering ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "phrase"),
    [("created", "opened ticket T-000042"), ("resolved", "has been resolved"), ("closed", "is now closed")],
)
def test_each_acknowledgement_names_the_ticket_and_threads(kind, phrase):
    mail = ack(kind=kind)
    assert mail.subject == "[#T-000042] Re: VPN down"
    assert mail.to == ["ann@northwind.example"]
    assert mail.text.startswith("Hello Ann,\n")
    assert phrase in mail.text and "[#T-000042]" in mail.text
    assert mail.message_id.startswith("itsm.") and mail.message_id.endswith("@northwind.example")
    assert mail.in_reply_to == "req-1@northwind.example"
    assert mail.references == ["r0@northwind.example", "req-1@northwind.example"]
    assert mail.html is None
    assert ("Restarted the VPN gateway." in mail.text) == (kind == "resolved")


def test_the_created_acknowledgement_says_how_to_add_information():
    text = ack().text
    assert "reply to this mail" in text and "keep [#T-000042] in the subject" in text


def test_the_greeting_falls_back_to_the_address_without_a_name():
    mail = render_acknowledgement(
        "closed",
        ticket_number="T-000042",
        title="VPN down",
        requester_name=None,
        requester="ann@northwind.example",
        token="[#T-000042]",
        from_domain="northwind.example",
        in_reply_to=None,
        references=[],
    )
    assert mail.text.startswith("Hello ann@northwind.example,\n")
    assert (mail.in_reply_to, mail.references) == (None, [])


@pytest.mark.parametrize(
    "title",
    ["VPN down", "Re: VPN down", "RE: AW: VPN down", "re:VPN down", "[#T-000042] Re: VPN down", "VPN\r\n down"],
)
def test_the_subject_has_one_token_and_one_reply_prefix(title):
    assert ack(title=title).subject == "[#T-000042] Re: VPN down"


def test_an_empty_title_still_makes_a_subject():
    assert ack(title="").subject == "[#T-000042] Re: (no subject)"


def test_references_append_in_reply_to_once_and_drop_brackets_and_blanks():
    assert thread_references(["<a@x>", "", "b@x"], "<c@x>") == ["a@x", "b@x", "c@x"]
    assert thread_references(["a@x", "c@x"], "c@x") == ["a@x", "c@x"]
    assert thread_references([], None) == []


def test_long_reference_chains_keep_the_root_and_the_latest():
    chain = thread_references([f"m{i}@x" for i in range(30)], "last@x")
    assert len(chain) == 20
    assert chain[0] == "m0@x" and chain[-2:] == ["m29@x", "last@x"]


def test_the_html_variant_is_autoescaped_and_the_text_is_not():
    mail = ack(title="<script>alert(1)</script> & more", with_html=True)
    assert mail.html is not None
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in mail.html
    assert "<script>" not in mail.html
    assert "<script>alert(1)</script> & more" in mail.text


def test_message_ids_are_unique_and_need_a_domain():
    ids = {make_message_id("northwind.example") for _ in range(100)}
    assert len(ids) == 100
    assert make_message_id("bücher.example").endswith("@xn--bcher-kva.example")
    with pytest.raises(ValueError):
        make_message_id("")
    with pytest.raises(ValueError):
        make_message_id("x.example>\r\nBcc: victim@example.com")


# --- the message -------------------------------------------------------------------------------------------


def test_the_message_carries_the_loop_guards_threading_and_a_utc_date():
    before = datetime.now(UTC).replace(microsecond=0)
    message = to_email_message(ack(), settings(25))
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert "Precedence" not in message
    assert message["Message-ID"].startswith("<itsm.") and message["Message-ID"].endswith("@northwind.example>")
    assert message["In-Reply-To"] == "<req-1@northwind.example>"
    assert message["References"] == "<r0@northwind.example> <req-1@northwind.example>"
    date = parsedate_to_datetime(message["Date"])
    assert date.utcoffset() == timedelta(0) and before <= date <= datetime.now(UTC)
    assert message["From"] == f"IT Service Desk <{HUB}>"
    assert message["To"] == "ann@northwind.example"


def test_a_non_ascii_sender_name_is_rfc2047_encoded():
    message = to_email_message(ack(), settings(25, from_name="Service-Desk Müller"))
    raw = bytes(message)
    assert raw.isascii()
    from_line = next(line for line in raw.splitlines() if line.startswith(b"From:"))
    assert b"=?utf-8?" in from_line
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["From"].addresses[0].display_name == "Service-Desk Müller"


def test_the_html_variant_goes_as_an_alternative():
    message = to_email_message(ack(with_html=True), settings(25))
    assert message.get_content_type() == "multipart/alternative"
    assert "opened ticket T-000042" in message.get_body(("plain",)).get_content()
    assert "<strong>T-000042</strong>" in message.get_body(("html",)).get_content()


# --- header injection ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "hi\r\nBcc: victim@example.com"},
        {"subject": "hi\nBcc: victim@example.com"},
        {"to": ["ann@northwind.example\r\nBcc: victim@example.com"]},
        {"in_reply_to": "a@x>\r\nBcc: victim@example.com"},
        {"references": ["a@x", "b@x>\nBcc: victim@example.com"]},
    ],
)
def test_header_injection_in_the_mail_is_refused(fields):
    base = {"to": ["ann@northwind.example"], "subject": "hi", "text": "", "message_id": "m@x"}
    with pytest.raises(ValueError, match=r"one line|Message-ID"):
        OutgoingMail(**(base | fields))


@pytest.mark.parametrize(
    "changes",
    [{"from_name": "Desk\r\nBcc: victim@example.com"}, {"from_address": "hd@northwind.example\nBcc: v@example.com"}],
)
def test_header_injection_through_the_settings_is_refused(changes):
    with pytest.raises(ValueError, match="one line"):
        to_email_message(ack(), settings(25, **changes))


def test_a_recipient_that_is_no_plain_address_is_refused():
    for bad in ["Ann <ann@northwind.example>", "ann@", "a@x, b@y", "no-at-sign"]:
        with pytest.raises(ValueError, match="not an e-mail address"):
            to_email_message(ack(to=bad), settings(25))


# --- sending through a real SMTP server --------------------------------------------------------------------


def test_a_batch_arrives_on_one_connection_and_a_refused_recipient_fails_alone():
    mails = [ack(), ack("gone@northwind.example"), ack("bob@northwind.example", kind="resolved")]
    with SmtpSink(refuse={"gone@northwind.example"}) as sink:
        results = send_mail(settings(sink.port), mails)
        received = list(sink.received)
    assert [r.message_id for r in results] == [m.message_id for m in mails]
    assert [r.ok for r in results] == [True, False, True]
    assert results[0].error is None and results[2].error is None
    assert results[1].error == "recipient refused (gone@northwind.example: 550)"
    assert [(r.mail_from, r.rcpt_tos, r.login) for r in received] == [
        (HUB, ["ann@northwind.example"], None),
        (HUB, ["bob@northwind.example"], None),
    ]
    assert received[0].peer == received[1].peer  # one connection for the batch
    first, second = (r.message for r in received)
    assert first["Message-ID"] == f"<{mails[0].message_id}>"
    assert first["Subject"] == "[#T-000042] Re: VPN down"
    assert first["Auto-Submitted"] == "auto-replied" and first["X-Auto-Response-Suppress"] == "All"
    assert first["In-Reply-To"] == "<req-1@northwind.example>"
    assert first["References"] == "<r0@northwind.example> <req-1@northwind.example>"
    assert first["From"] == f"IT Service Desk <{HUB}>"
    assert "Precedence" not in first
    assert "We have opened ticket T-000042" in first.get_content()
    assert second["To"] == "bob@northwind.example"
    assert "Restarted the VPN gateway." in second.get_content()


def test_an_unbuildable_mail_fails_alone():
    mails = [ack("Ann <ann@northwind.example>"), ack()]
    with SmtpSink() as sink:
        results = send_mail(settings(sink.port), mails)
        arrived = [m["To"] for m in sink.messages]
    assert [r.ok for r in results] == [False, True]
    assert "not an e-mail address" in results[0].error
    assert arrived == ["ann@northwind.example"]


def test_non_ascii_content_arrives_intact():
    mail = ack(title="Drucker im 2. Stock druckt nur Kästchen", with_html=True)
    with SmtpSink() as sink:
        assert send_mail(settings(sink.port, from_name="Service-Desk Müller"), [mail])[0].ok
        (message,) = sink.messages
    assert message["Subject"] == "[#T-000042] Re: Drucker im 2. Stock druckt nur Kästchen"
    assert message["From"].addresses[0].display_name == "Service-Desk Müller"
    assert "Kästchen" in message.get_body(("plain",)).get_content()
    assert "Kästchen" in message.get_body(("html",)).get_content()


def test_login_with_auth():
    with SmtpSink(credentials=(USER, PASSWORD)) as sink:
        config = settings(sink.port, username=USER, password=PASSWORD)
        results = send_mail(config, [ack(), ack("bob@northwind.example")])
        logins = [r.login for r in sink.received]
    assert [r.ok for r in results] == [True, True]
    assert logins == [USER, USER]


def test_a_sink_requiring_auth_refuses_a_mail_without_login():
    # Guards the AUTH test above: without a login the sink really does refuse (530), so the login mattered.
    with SmtpSink(credentials=(USER, PASSWORD)) as sink:
        (result,) = send_mail(settings(sink.port), [ack()])
        assert sink.messages == []
    assert not result.ok and result.error == "refused by the server: 530"


def test_a_refused_login_raises_without_the_password():
    with SmtpSink(credentials=(USER, PASSWORD)) as sink, pytest.raises(SmtpUnavailable) as caught:
        send_mail(settings(sink.port, username=USER, password="wrong-" + PASSWORD), [ack()])
    message = str(caught.value)
    assert f"cannot log in as '{USER}' at the SMTP server 127.0.0.1:{sink.port}" in message
    assert "535" in message and PASSWORD not in message


def test_an_unreachable_server_raises_without_the_password():
    port = free_port()  # bound and released: nothing listens there
    config = settings(port, username=USER, password=PASSWORD)
    with pytest.raises(SmtpUnavailable) as caught:
        send_mail(config, [ack()])
    message = str(caught.value)
    assert f"cannot connect to the SMTP server 127.0.0.1:{port} (plain)" in message
    assert "ConnectionRefusedError" in message and PASSWORD not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_an_empty_batch_does_not_connect():
    assert send_mail(settings(free_port()), []) == []


def test_a_username_without_a_password_is_a_config_error():
    with pytest.raises(ConfigError, match="password"):
        send_mail(settings(free_port(), username=USER), [ack()])


def test_a_password_in_clear_off_loopback_is_a_config_error():
    config = SmtpConfig(host="mail.example.com", security="plain", username=USER, password=PASSWORD, from_address=HUB)
    with pytest.raises(ConfigError, match="in clear") as caught:
        send_mail(config, [ack()])
    assert PASSWORD not in str(caught.value)


# --- TLS: a throwaway certificate, trusted through SSL_CERT_FILE -----------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_a_trusted_certificate_and_login(security, certificate, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with SmtpSink(credentials=(USER, PASSWORD), tls=security, certificate=certificate) as sink:
        config = settings(sink.port, security=security, username=USER, password=PASSWORD)
        (result,) = send_mail(config, [ack()])
        received = list(sink.received)
    assert result.ok
    assert [(r.login, r.rcpt_tos) for r in received] == [(USER, ["ann@northwind.example"])]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_an_untrusted_certificate_is_refused(security, certificate):
    with SmtpSink(tls=security, certificate=certificate) as sink:
        with pytest.raises(SmtpUnavailable) as caught:
            send_mail(settings(sink.port, security=security, username=USER, password=PASSWORD), [ack()])
        assert sink.received == []
    assert "SSLCertVerificationError" in str(caught.value) and PASSWORD not in str(caught.value)
