"""Each alert channel sends the documented request to a real server on loopback; retries keep the event id."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import TypeAdapter

from connectors.alerts import mask, send_alert
from connectors.webhook.auth import check
from connectors.webhook.config import SignedAuth
from itsm_core.alerts.spec import Channel
from itsm_core.config import SmtpConfig
from itsm_core.errors import UpstreamRejected, UpstreamUnavailable
from tests.support.http_sink import HttpSink
from tests.support.smtp_sink import SmtpSink

ALERT = {
    "event_id": "6f1c2e0a-8d4b-5f7e-9a3c-1b2d3e4f5a6b", "event": "sla_breach", "rule": "sla", "ticket": "T-000042",
    "subject": "SLA breached on T-000042: resolution", "text": "SLA breached on T-000042: resolution\nMail is down",
    "detail": {"metric": "resolution"},
}  # fmt: skip


def channel(**config: object) -> Channel:
    return TypeAdapter(Channel).validate_python(config)


def send(name: str, config: Channel, smtp: SmtpConfig | None = None) -> None:
    with httpx.Client(timeout=5) as client:
        send_alert(name, config, ALERT, client=client, smtp=smtp)


def test_the_webhook_is_signed_in_the_hub_scheme_with_the_event_id_as_delivery():
    with HttpSink() as sink:
        send("ops", channel(type="webhook", url=f"{sink.url}/hooks/itsm", secret="hook-secret"))
    (request,) = sink.requests
    assert request.path == "/hooks/itsm" and json.loads(request.body) == ALERT
    assert request.headers["x-itsm-delivery"] == ALERT["event_id"]
    check(SignedAuth(scheme="hmac", secret="hook-secret"), request.headers, request.body)  # raises if it is not


def test_an_endpoint_that_fails_twice_then_succeeds_gets_the_alert_once_with_one_event_id():
    with HttpSink(statuses=[503, 502]) as sink:
        send("ops", channel(type="webhook", url=sink.url, secret="hook-secret"))
    assert len(sink.requests) == 3
    assert {r.headers["x-itsm-delivery"] for r in sink.requests} == {ALERT["event_id"]}
    assert {r.body for r in sink.requests} == {sink.requests[0].body}


def test_unavailable_after_three_tries_and_refused_at_once():
    with HttpSink(default=503) as sink, pytest.raises(UpstreamUnavailable, match="answered 503"):
        send("ops", channel(type="webhook", url=sink.url, secret="s"))
    assert len(sink.requests) == 3
    with HttpSink(default=400) as sink, pytest.raises(UpstreamRejected, match="refused the alert"):
        send("ops", channel(type="webhook", url=sink.url, secret="s"))
    assert len(sink.requests) == 1


def test_sms_goes_to_twilios_messages_api_once_per_recipient():
    with HttpSink(default=201) as sink:
        config = channel(type="sms", api_url=sink.url, account="AC0123", token="sms-token", sender="+15550100",
                         to=["+15550111", "+15550112"])  # fmt: skip
        send("oncall-sms", config)
    assert [r.path for r in sink.requests] == ["/2010-04-01/Accounts/AC0123/Messages.json"] * 2
    forms = [parse_qs(r.body.decode()) for r in sink.requests]
    assert [f["To"] for f in forms] == [["+15550111"], ["+15550112"]]
    assert forms[0]["From"] == ["+15550100"] and forms[0]["Body"] == [ALERT["text"]]
    assert sink.requests[0].headers["authorization"] == "Basic " + base64.b64encode(b"AC0123:sms-token").decode()
    assert sink.requests[0].headers["content-type"] == "application/x-www-form-urlencoded"


def test_slack_and_teams_get_their_incoming_webhook_formats():
    with HttpSink() as sink:
        send("slack", channel(type="slack", url=f"{sink.url}/services/T000/B000/XXXX"))
        send("teams", channel(type="teams", url=f"{sink.url}/webhookb2/abc"))
    slack, teams = (json.loads(r.body) for r in sink.requests)
    assert slack == {"text": f"*{ALERT['subject']}*\n{ALERT['text']}"}
    assert teams["@type"] == "MessageCard" and teams["title"] == ALERT["subject"]
    assert teams["themeColor"] == "D13438" and "<br>" in teams["text"]


def test_a_refused_chat_webhook_does_not_show_its_secret_path():
    with HttpSink(default=404) as sink, pytest.raises(UpstreamRejected) as refused:
        send("slack", channel(type="slack", url=f"{sink.url}/services/T000/B000/SECRETPART"))
    assert "SECRETPART" not in str(refused.value) and sink.url in str(refused.value)


def test_email_goes_through_the_hubs_smtp():
    with SmtpSink() as sink:
        smtp = SmtpConfig(host="127.0.0.1", port=sink.port, security="plain", from_address="hub@example.org")
        send("oncall-mail", channel(type="email", to=["oncall@example.org"]), smtp)
    (message,) = sink.messages
    assert message["To"] == "oncall@example.org" and message["Subject"] == ALERT["subject"]
    assert "Mail is down" in message.get_content()


def test_history_masks_addresses():
    assert mask("oncall@example.org") == "o***@example.org"
    assert mask("+33612345678") == "+33*******78"
    assert mask("https://hooks.slack.com/services/T0/B0/secret") == "https://hooks.slack.com"
