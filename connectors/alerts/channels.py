"""Sending one alert through one channel, in the request format each service documents.

- webhook: ``POST url`` with the alert as JSON, signed in the hub's `hmac` scheme (`connectors/webhook/auth.py`):
  ``X-Itsm-Delivery`` is the alert's event id, the same on every attempt, so the receiver can drop repeats;
- sms: Twilio's ``POST /2010-04-01/Accounts/{account}/Messages.json`` (form: To, From, Body; basic auth), one
  message per recipient;
- slack: ``{"text": …}`` (Slack incoming webhooks); teams: a MessageCard (Teams incoming webhooks);
- email: through the hub's `email.smtp`, one mail to the channel's recipients.

Errors: a 5xx, 408, 429 or no answer is `UpstreamUnavailable` (retried here three times, then by the outbox with
backoff); any other 4xx is `UpstreamRejected` (a dead letter at once: the same request would be refused again).
Neither message carries a URL's secret part or a token.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from connectors.mail.outbound import OutgoingMail, send_mail
from connectors.webhook.auth import signed_headers
from itsm_core.alerts.spec import ChatChannel, EmailChannel, SmsChannel, WebhookChannel
from itsm_core.config import SmtpConfig
from itsm_core.errors import SmtpUnavailable, UpstreamRejected, UpstreamUnavailable

#: Attempts within one push before the outbox's backoff takes over.
ATTEMPTS = 3
TRANSIENT_STATUSES = frozenset({408, 425, 429})
TEAMS_COLOURS = {"sla_breach": "D13438", "escalation": "D13438", "sla_warning": "FFB900"}

Channel = EmailChannel | WebhookChannel | SmsChannel | ChatChannel


def send_alert(
    name: str, channel: Channel, alert: dict[str, Any], *, client: httpx.Client, smtp: SmtpConfig | None
) -> None:
    """Send `alert` (an outbox payload: event_id, event, rule, ticket, subject, text, detail) through `channel`."""
    if isinstance(channel, EmailChannel) or name == "mailto":
        _email(name, alert.get("to") or getattr(channel, "to", []), alert, smtp)
    elif isinstance(channel, WebhookChannel):
        body = json.dumps(alert, sort_keys=True, ensure_ascii=False).encode()
        headers = signed_headers(channel.secret.get_secret_value(), body, alert["event_id"])
        _post(name, client, str(channel.url), content=body, headers=headers)
    elif isinstance(channel, SmsChannel):
        url = f"{str(channel.api_url).rstrip('/')}/2010-04-01/Accounts/{channel.account}/Messages.json"
        auth = (channel.account, channel.token.get_secret_value())
        for number in channel.to:
            form = {"To": number, "From": channel.sender, "Body": alert["text"][:1600]}
            _post(name, client, url, data=form, auth=auth)
    elif channel.type == "slack":
        _post(name, client, channel.url.get_secret_value(), json={"text": f"*{alert['subject']}*\n{alert['text']}"})
    else:
        card = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": alert["subject"],
            "themeColor": TEAMS_COLOURS.get(alert["event"], "0078D7"),
            "title": alert["subject"],
            "text": alert["text"].replace("\n", "<br>"),
        }
        _post(name, client, channel.url.get_secret_value(), json=card)


@retry(
    retry=retry_if_exception_type(UpstreamUnavailable),
    stop=stop_after_attempt(ATTEMPTS),
    wait=wait_exponential(multiplier=0.2, max=2),
    reraise=True,
)
def _post(name: str, client: httpx.Client, url: str, **request: Any) -> None:
    system = f"alert:{name}"
    where = _public(url)
    try:
        answer = client.post(url, **request)
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(f"{system}: {where} did not answer ({type(exc).__name__})", system=system) from None
    if answer.is_success:
        return
    detail = answer.text[:200]
    if answer.status_code >= 500 or answer.status_code in TRANSIENT_STATUSES:
        raise UpstreamUnavailable(
            f"{system}: {where} answered {answer.status_code}", system=system, status=answer.status_code, detail=detail
        )
    raise UpstreamRejected(
        f"{system}: {where} refused the alert ({answer.status_code}: {detail})",
        system=system, status=answer.status_code, detail=detail,
    )  # fmt: skip


def _email(name: str, to: list[str], alert: dict[str, Any], smtp: SmtpConfig | None) -> None:
    system = f"alert:{name}"
    if smtp is None:
        raise UpstreamRejected(f"{system}: an email alert needs email.smtp in the config", system=system)
    domain = smtp.from_address.rpartition("@")[2] or "itsm-hub"
    mail = OutgoingMail(
        to=to, subject=alert["subject"], text=alert["text"], message_id=f"alert-{alert['event_id']}@{domain}"
    )
    try:
        (result,) = send_mail(smtp, [mail])
    except SmtpUnavailable as exc:
        raise UpstreamUnavailable(f"{system}: {exc}", system=system) from None
    if not result.ok:
        raise UpstreamRejected(f"{system}: the mail server refused the alert ({result.error})", system=system)


def _public(url: str) -> str:
    """Scheme and host of a URL: chat webhook URLs carry their secret in the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def mask(address: str) -> str:
    """An address as history shows it: a***@example.org, +33******12, a URL's host."""
    if "://" in address:
        return _public(address)
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    if len(address) > 4:
        return address[:3] + "*" * (len(address) - 5) + address[-2:]
    return "***"
