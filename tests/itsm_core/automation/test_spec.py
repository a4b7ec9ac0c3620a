"""The `automation:` section through the config loader: what it refuses (naming the key) and what it accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

import itsm_core.automation.spec as spec
from itsm_core.config import parse_config
from itsm_core.errors import ConfigError

PASSWORD = "ldap-bind-pw-7Qx9"


def rule(name: str = "r", **extra: str) -> str:
    """One rule in YAML flow style; `extra` adds or replaces keys (their YAML text as given)."""
    keys = {"name": name, "when": "{field: intent, equals: password_reset}", "run_deployment": "{name: reset/ldap}"}
    keys.update(extra)
    return "{" + ", ".join(f"{key}: {value}" for key, value in keys.items()) + "}"


def docstring_example() -> str:
    """The YAML example at the top of spec.py: what an operator copies."""
    return spec.__doc__.split("```yaml\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (
            f"automation: {{rules: [{rule(run_deployment='{name: reset-ldap}')}]}}",
            "automation.rules[0].run_deployment.name",
            "should match pattern",
        ),
        (
            # the second rule's parameters: the key says which rule, the message what jinja2 found wrong
            "automation: {rules: ["
            + rule("ok", run_deployment="{name: a/b, parameters: {t: '{{ number }}'}}")
            + ", "
            + rule("bad", run_deployment="{name: a/b, parameters: {who: {list: ['{{ ticket.requester '] }}}")
            + "]}",
            "automation.rules[1].run_deployment.parameters",
            "not a valid jinja2 template (line 1: unexpected end of template",
        ),
        (
            f"automation: {{rules: [{rule('twice')}, {rule('other')}, {rule('twice')}]}}",
            "automation",
            "rules: twice named twice",
        ),
        (f"automation: {{rules: [{rule(approval='maybe')}]}}", "automation.rules[0].approval", "'auto' or 'ask'"),
        (
            f"automation: {{rules: [{rule(min_confidence='1.5')}]}}",
            "automation.rules[0].min_confidence",
            "less than or equal to 1",
        ),
        (
            "automation: {directories: {corp: {url: 'ldaps://ldap.example.org', bind_dn: 'cn=hub', base_dn: 'ou=p'}}}",
            "automation.directories.corp.bind_password",
            "Field required",
        ),
    ],
    ids=["deployment-without-slash", "template-does-not-compile", "same-name", "approval", "confidence", "no-password"],
)
def test_invalid_automation_configs_name_the_key(text, key, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, origin="itsm.yaml")
    assert caught.value.key == key
    assert str(caught.value).startswith(f"itsm.yaml: {key}: ")
    assert fragment in str(caught.value)


def test_a_template_in_a_rule_text_is_checked_too():
    with pytest.raises(ConfigError) as caught:
        parse_config(f"automation: {{rules: [{rule(ask_text=repr('Reply {% if %}'))}]}}", origin="itsm.yaml")
    assert caught.value.key == "automation.rules[0].ask_text"
    assert "not a valid jinja2 template" in str(caught.value)


def test_the_documented_example_loads_with_its_secret_hidden(monkeypatch):
    monkeypatch.setenv("LDAP_PASSWORD", PASSWORD)
    config = parse_config(docstring_example(), origin="itsm.yaml")
    automation = config.automation
    (only,) = automation.rules
    assert only.name == "reset-password"
    assert only.min_confidence == 0.8 and only.approval == "auto" and only.failure_group == "service-desk"
    assert only.run_deployment.name == "reset-password/ldap"
    assert only.run_deployment.parameters == {
        "directory": "corp",
        "requester": "{{ ticket.requester }}",  # kept as written: rendered when the rule matches
        "ticket": "{{ number }}",
    }
    assert automation.rule("reset-password") is only and automation.rule("nope") is None
    assert automation.max_ticket_age_hours == 24  # the defaults the docs promise
    assert "yes" in automation.confirm_words and "no" in automation.decline_words
    corp = automation.directories["corp"]
    assert corp.url == "ldaps://ldap.example.org" and corp.base_dn == "ou=people,dc=example,dc=org"
    assert corp.bind_dn == "cn=itsm-hub,ou=services,dc=example,dc=org" and corp.start_tls is False
    assert isinstance(corp.bind_password, SecretStr)
    assert corp.bind_password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(config) and PASSWORD not in str(config)
    assert PASSWORD not in repr(automation) and PASSWORD not in str(config.model_dump())


def test_no_automation_section_means_no_rules():
    automation = parse_config("").automation
    assert automation.rules == [] and automation.directories == {}


def test_the_readme_automation_example_is_valid(monkeypatch):
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Automation", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("LDAP_PASSWORD", "x")
    config = parse_config(example)
    (rule,) = config.automation.rules
    assert (rule.name, rule.run_deployment.name) == ("reset-password", "reset-password/ldap-reset")
    assert config.rules.classification[0].set == {"intent": "password_reset"}
    assert "corp" in config.automation.directories
