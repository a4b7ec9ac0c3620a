"""The alert channels: e-mail (the hub's SMTP), signed outbound webhooks, SMS through a Twilio-compatible API,
Slack and Microsoft Teams incoming webhooks. `send_alert` sends one queued alert (`itsm_core/alerts/plan.py`)."""

from connectors.alerts.channels import mask, send_alert

__all__ = ["mask", "send_alert"]
