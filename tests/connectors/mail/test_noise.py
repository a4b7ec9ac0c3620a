from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.mail.noise import classify_noise
from connectors.mail.reply import reply_text

SAMPLES = Path(__file__).resolve().parents[3] / "flows" / "demo" / "mail"


def mail(**headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Ann <ann@northwind.example>")
    message["To"] = "helpdesk@northwind.example"
    message["Subject"] = "Hello"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("body")
    return bytes(message)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto_Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
        ({"X_Autoreply": "yes"}, "X-Autoreply: yes"),
        ({"X_Autorespond": "1"}, "X-Autorespond: 1"),
        ({"X_Auto_Response_Suppress": "All"}, "X-Auto-Response-Suppress: All"),
        ({"Precedence": "bulk"}, "Precedence: bulk"),
        ({"List_Id": "<it.northwind.example>"}, "mailing list (List-Id)"),
        ({"Return_Path": "<>"}, "empty Return-Path (<>)"),
    ],
)
def test_autoreplies_name_the_header_that_decided(headers, reason):
    noise = classify_noise(mail(**headers))
    assert noise is not None and noise.kind == "autoreply" and noise.reason == reason


@pytest.mark.parametrize("headers", [{}, {"Auto_Submitted": "no"}, {"Precedence": "first-class"}])
def test_ordinary_mail_is_not_noise(headers):
    assert classify_noise(mail(**headers)) is None


def test_a_delivery_report_is_a_bounce_that_names_the_bounced_message():
    original = EmailMessage()
    original["From"] = "helpdesk@northwind.example"
    original["Message-ID"] = "<ack-1@northwind.example>"
    original.set_content("Your ticket T-000001 was opened")
    report = EmailMessage()
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example>"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.set_content("550 5.1.1 no such user")
    report.add_attachment(original)
    report.replace_header("Content-Type", report["Content-Type"].replace("multipart/mixed", "multipart/report"))
    report.set_param("report-type", "delivery-status")
    noise = classify_noise(bytes(report))
    assert noise is not None and noise.kind == "bounce"
    assert noise.original_message_id == "ack-1@northwind.example"


def test_a_read_receipt_is_an_autoreply():
    message = EmailMessage()
    message["From"] = "ann@northwind.example"
    message["In-Reply-To"] = "<ack-2@northwind.example>"
    message.make_mixed()
    message.replace_header("Content-Type", 'multipart/report; report-type="disposition-notification"')
    noise = classify_noise(bytes(message))
    assert noise is not None and noise.kind == "autoreply" and "read receipt" in noise.reason
    assert noise.original_message_id == "ack-2@northwind.example"


def test_the_demo_samples():
    found = {p.name: classify_noise(p.read_bytes()) for p in SAMPLES.glob("*.eml")}
    assert {name for name, noise in found.items() if noise} == {"10-abwesenheitsnotiz.eml"}


def test_garbage_is_not_noise_and_does_not_raise():
    assert classify_noise(b"\x00\xff garbage") is None


def test_reply_text_cuts_quoted_history_in_several_languages():
    assert reply_text("Thanks, it works now.\n\nOn Mon, 16 Nov 2026, Bob <b@x> wrote:\n> old\n") == (
        "Thanks, it works now."
    )
    assert reply_text("Danke!\n\nAm 16.11.2026 um 09:00 schrieb Bob <b@x>:\n> alt\n") == "Danke!"
    assert reply_text("> only a quote\n") == "> only a quote"  # nothing new: keep everything
