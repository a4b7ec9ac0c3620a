"""The `alerts:` section: channels (where alerts go) and rules (which events on which tickets go where).

```yaml
alerts:
  max_per_ticket_per_hour: 10            # a storm on one ticket stops here (the rest is counted, not sent)
  channels:
    oncall-mail: {type: email, to: [oncall@example.org]}                   # through email.smtp
    ops-hook:    {type: webhook, url: https://ops.example.org/hooks/itsm, secret: ${OPS_HOOK_SECRET}}
    oncall-sms:  {type: sms, account: ${TWILIO_SID}, token: ${TWILIO_TOKEN}, sender: "+15550100", to: ["+15550111"]}
    ops-slack:   {type: slack, url: ${SLACK_WEBHOOK_URL}}
    ops-teams:   {type: teams, url: ${TEAMS_WEBHOOK_URL}}
  operations: {channels: [ops-slack], lag_minutes: 30}   # the hub itself in trouble (prefect.yaml's automations)
  rules:
    - name: new-p1
      events: [ticket_created, priority_changed]
      when: {field: priority, equals: 1}                                  # the rules' condition language
      channels: [oncall-mail, oncall-sms, ops-slack]
    - name: sla
      events: [sla_warning, sla_breach, escalation]
      channels: [ops-teams]
```

An SLA escalation's ``notify`` names an alert rule (its channels get the escalation) or an e-mail address.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, model_validator

from itsm_core.rules.conditions import Condition

#: The events alert rules can name.
EVENTS = (
    "ticket_created", "assigned", "status_changed", "priority_changed", "sla_warning", "sla_breach", "escalation",
)  # fmt: skip
Event = Literal[
    "ticket_created", "assigned", "status_changed", "priority_changed", "sla_warning", "sla_breach", "escalation"
]
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmailChannel(_Strict):
    """Mail through the hub's `email.smtp`."""

    type: Literal["email"]
    to: list[str] = Field(min_length=1)


class WebhookChannel(_Strict):
    """A JSON POST signed in the hub's `hmac` scheme (X-Itsm-Signature), with an event id stable across retries."""

    type: Literal["webhook"]
    url: AnyHttpUrl
    secret: SecretStr


class SmsChannel(_Strict):
    """Twilio's Messages API (or one compatible): ``POST {api_url}/2010-04-01/Accounts/{account}/Messages.json``,
    form fields To, From, Body, HTTP basic auth (account, token); one message per recipient."""

    type: Literal["sms"]
    api_url: AnyHttpUrl = AnyHttpUrl("https://api.twilio.com")
    account: str = Field(min_length=1)
    token: SecretStr
    sender: str = Field(min_length=1, description="the From number (E.164) or messaging service")
    to: list[str] = Field(min_length=1)


class ChatChannel(_Strict):
    """An incoming webhook of Slack (``{"text": …}``) or Microsoft Teams (a MessageCard). The URL is a secret."""

    type: Literal["slack", "teams"]
    url: SecretStr


Channel = Annotated[EmailChannel | WebhookChannel | SmsChannel | ChatChannel, Field(discriminator="type")]


class AlertRule(_Strict):
    """When one of `events` happens to a ticket the condition holds for, tell `channels` (once per event and ticket)."""

    name: str = Field(pattern=_NAME)
    events: list[Event] = Field(min_length=1, description="what it listens for (not `on`: YAML reads that as true)")
    when: Condition | None = None
    channels: list[str] = Field(min_length=1)
    template: str | None = Field(default=None, description="jinja2 text of the message; default: one per event")


class OperationsAlerts(_Strict):
    """Trouble with the hub itself, told by the `ops-alert` deployment that prefect.yaml's automations start: a
    hub-cycle failing twice in a row, a source whose last success is older than `lag_minutes`."""

    channels: list[str] = Field(min_length=1)
    lag_minutes: int = Field(default=30, ge=1, description="a source not synced for longer is reported (hourly)")


class AlertsConfig(_Strict):
    channels: dict[Annotated[str, Field(pattern=_NAME)], Channel] = Field(default_factory=dict)
    rules: list[AlertRule] = Field(default_factory=list)
    max_per_ticket_per_hour: int = Field(default=10, ge=1)
    max_ticket_age_hours: float | None = Field(
        default=24,
        gt=0,
        description="ticket_created alerts only for tickets opened this recently (a first load of an upstream's "
        "history alerts nothing); null: every new ticket",
    )
    operations: OperationsAlerts | None = None

    @model_validator(mode="after")
    def _known_channels(self) -> AlertsConfig:
        names = [rule.name for rule in self.rules]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rules: {', '.join(repeated)} named twice")
        named = [(f"rule {rule.name}", rule.channels) for rule in self.rules]
        named += [("operations", self.operations.channels)] if self.operations else []
        for who, channels in named:
            unknown = [name for name in channels if name not in self.channels]
            if unknown:
                known = ", ".join(sorted(self.channels)) or "none"
                raise ValueError(f"{who}: unknown channel {', '.join(unknown)} (channels: {known})")
        return self

    def rule(self, name: str) -> AlertRule | None:
        return next((rule for rule in self.rules if rule.name == name), None)
