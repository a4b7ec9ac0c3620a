"""The `automation:` section: rules that start a Prefect deployment for a ticket, and the directories the bundled
workflows act on.

```yaml
automation:
  rules:                                   # in order: a ticket gets the first rule that matches, once, ever
    - name: reset-password
      when: {field: intent, equals: password_reset}     # the rules' condition language
      min_confidence: 0.8                  # the classification's confidence (a rule's or a person's counts as 1)
      approval: auto                       # or `ask`: the requester confirms by replying first
      run_deployment:
        name: reset-password/ldap          # <flow>/<deployment>, as `prefect deploy` registered it
        parameters: {directory: corp, requester: "{{ ticket.requester }}", ticket: "{{ number }}"}
      failure_group: service-desk          # where a failed run sends the ticket (default: the group it has)
  directories:
    corp:
      url: ldaps://ldap.example.org
      bind_dn: cn=itsm-hub,ou=services,dc=example,dc=org
      bind_password: ${LDAP_PASSWORD}
      base_dn: ou=people,dc=example,dc=org
```

Parameters are jinja2 over `ticket` (the stored ticket: `requester`, `title`, `intent`, `custom_fields`…) and
`number`; they are rendered when the rule matches and are visible in the Prefect UI, so they never hold a secret.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from itsm_core.rules.conditions import Condition
from itsm_core.templating import check_template

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

ASK_TEXT = """\
An automatic fix may solve this request: {{ rule.description or rule.name }}.
Reply to this message with YES to start it, or NO to leave the ticket to an agent."""
SUCCESS_TEXT = """\
Solved automatically ({{ rule.name }}): the workflow {{ run.deployment }} completed.
{% if run.message %}{{ run.message }}
{% endif %}If the problem is not solved, reply and the ticket opens again."""
FAILURE_TEXT = """\
The automation {{ rule.name }} could not solve this ticket: {{ run.reason }}
Flow run {{ run.name }} ({{ run.id }}) in the Prefect UI has its logs. Please handle the ticket by hand."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _templates(value: Any, path: str = "") -> None:
    """Check every string of `value` compiles; the error names the parameter (``requester``, ``ids[2]``)."""
    if isinstance(value, str):
        try:
            check_template(value)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _templates(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _templates(item, f"{path}[{index}]")


class RunDeployment(_Strict):
    """The Prefect deployment to run and its parameters (jinja2 in every string, at any depth)."""

    name: str = Field(pattern=r"^[^/\s]+/[^/\s]+$", description="<flow>/<deployment>")
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _compile(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        _templates(parameters)
        return parameters


class AutomationRule(_Strict):
    """When the condition holds and the classification is confident enough, run the deployment for the ticket."""

    name: str = Field(pattern=_NAME)
    description: str | None = Field(default=None, description="what it does, in the requester's words (ask mode)")
    when: Condition
    min_confidence: float = Field(default=0.0, ge=0, le=1)
    approval: Literal["auto", "ask"] = "auto"
    run_deployment: RunDeployment
    failure_group: str | None = Field(default=None, min_length=1, max_length=200)
    ask_text: str = ASK_TEXT
    success_text: str = SUCCESS_TEXT
    failure_text: str = FAILURE_TEXT

    @field_validator("ask_text", "success_text", "failure_text")
    @classmethod
    def _compiles(cls, text: str) -> str:
        return check_template(text)


class LdapDirectory(_Strict):
    """An LDAP directory the bundled account workflows act on (OpenLDAP, 389-DS, Active Directory's LDAP).

    The bind account needs to search `base_dn`, change `userPassword` (the Password Modify operation, RFC 3062)
    and, for unlocking, delete `pwdAccountLockedTime` (OpenLDAP's ppolicy overlay)."""

    url: str = Field(pattern=r"^ldaps?://", description="ldap://host:389 or ldaps://host:636")
    start_tls: bool = Field(default=False, description="upgrade an ldap:// connection with StartTLS")
    bind_dn: str = Field(min_length=1)
    bind_password: SecretStr
    base_dn: str = Field(min_length=1)
    mail_attribute: str = Field(default="mail", description="the attribute holding a person's address")
    user_filter: str = Field(default="(objectClass=inetOrgPerson)", description="ANDed with the mail match")
    timeout_seconds: float = Field(default=10, gt=0)


class AutomationConfig(_Strict):
    rules: list[AutomationRule] = Field(default_factory=list)
    directories: dict[Annotated[str, Field(pattern=_NAME)], LdapDirectory] = Field(default_factory=dict)
    max_ticket_age_hours: float | None = Field(
        default=24,
        gt=0,
        description="only tickets opened this recently (a first load of an upstream's history starts nothing); "
        "null: any open ticket",
    )
    confirm_words: list[str] = Field(
        default=["yes", "y", "ok", "confirm", "confirmed", "oui", "ja", "si", "sí", "tak", "go"], min_length=1
    )
    decline_words: list[str] = Field(default=["no", "n", "non", "nein", "nie", "cancel", "stop"], min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> AutomationConfig:
        names = [rule.name for rule in self.rules]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rules: {', '.join(repeated)} named twice")
        return self

    def rule(self, name: str) -> AutomationRule | None:
        return next((rule for rule in self.rules if rule.name == name), None)
