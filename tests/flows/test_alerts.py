"""Alert rules end to end, as people run the hub: tickets imported for real, `itsm sla check`, `itsm push`, a real
HTTP endpoint receiving the signed alerts, `itsm alerts history` showing them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import itsm
from test_cli_sla import mail

from connectors.webhook.auth import check
from connectors.webhook.config import SignedAuth
from tests.support.http_sink import HttpSink

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]

CONFIG = """database_url: sqlite:///store.db
rules:
  classification:
    - {{name: outage, when: {{field: text, contains: down}}, set: {{urgency: 1, impact: 1}}}}
  sla:
    policies:
      - {{name: p1, when: {{field: priority, lte: 1}}, targets: {{resolution: 0.01m}}}}
    escalations:
      - {{name: major, metric: resolution, at: 0.01m, actions: [{{notify: duty-manager}}]}}
alerts:
  channels:
    ops-hook: {{type: webhook, url: "{url}/alerts", secret: alert-secret}}
  rules:
    - {{name: new-p1, events: [ticket_created], when: {{field: priority, equals: 1}}, channels: [ops-hook]}}
    - {{name: duty-manager, events: [escalation], channels: [ops-hook]}}
"""


def alerts(sink: HttpSink) -> list[dict]:
    for request in sink.requests:
        check(SignedAuth(scheme="hmac", secret="alert-secret"), request.headers, request.body)
    return [json.loads(r.body) for r in sink.requests]


def test_a_new_p1_and_an_sla_escalation_are_each_delivered_once(tmp_path: Path):
    with HttpSink() as sink:
        (tmp_path / "itsm.yaml").write_text(CONFIG.format(url=sink.url))
        (tmp_path / "inbox").mkdir()
        mail(tmp_path / "inbox" / "1.eml", "Mail server down")
        mail(tmp_path / "inbox" / "2.eml", "New mouse please")
        assert itsm("db", "upgrade", cwd=tmp_path).returncode == 0
        imported = itsm("email", "import-dir", "inbox", cwd=tmp_path)
        assert imported.returncode == 0, imported.stderr
        pushed = itsm("push", cwd=tmp_path)
        assert pushed.returncode == 0, pushed.stderr
        assert "alert:ops-hook: 1 sent" in pushed.stdout
        (created,) = alerts(sink)
        assert (created["event"], created["rule"], created["ticket"]) == ("ticket_created", "new-p1", "T-000001")
        assert created["subject"] == "New P1 T-000001: Mail server down"

        for _ in range(2):  # the second check fires nothing new: no second alert
            checked = itsm("sla", "check", cwd=tmp_path)
            assert checked.returncode == 0, checked.stderr
            assert itsm("push", cwd=tmp_path).returncode == 0
        escalations = [a for a in alerts(sink) if a["event"] == "escalation"]
        assert len(escalations) == 1 and escalations[0]["rule"] == "duty-manager"
        assert escalations[0]["ticket"] == "T-000001" and escalations[0]["detail"]["level"] == "major"
        assert len(sink.requests) == 2

    history = json.loads(itsm("alerts", "history", "--json", cwd=tmp_path).stdout)
    assert [(h["event"], h["state"], h["to"]) for h in history] == [
        ("escalation", "sent", [sink.url]),
        ("ticket_created", "sent", [sink.url]),
    ]
    one = json.loads(itsm("alerts", "history", "--ticket", "T-000002", "--json", cwd=tmp_path).stdout)
    assert one == []


def test_an_unreachable_channel_keeps_the_alert_for_a_retry_and_history_says_why(tmp_path: Path):
    from tests.support.net import free_port

    (tmp_path / "itsm.yaml").write_text(CONFIG.format(url=f"http://127.0.0.1:{free_port()}"))
    (tmp_path / "inbox").mkdir()
    mail(tmp_path / "inbox" / "1.eml", "Mail server down")
    assert itsm("db", "upgrade", cwd=tmp_path).returncode == 0
    assert itsm("email", "import-dir", "inbox", cwd=tmp_path).returncode == 0
    pushed = itsm("push", cwd=tmp_path)
    assert pushed.returncode == 0 and "alert:ops-hook: 0 sent, 1 waiting for a retry" in pushed.stdout
    (entry,) = json.loads(itsm("alerts", "history", "--json", cwd=tmp_path).stdout)
    assert entry["state"] == "pending" and entry["attempts"] == 1 and "did not answer" in entry["last_error"]
    shown = itsm("alerts", "history", cwd=tmp_path)
    assert "retry (1 tried)" in shown.stdout


def test_an_escalation_naming_no_rule_or_address_is_refused_with_its_key(tmp_path: Path):
    config = CONFIG.format(url="http://127.0.0.1:9").replace("{notify: duty-manager}", "{notify: nobody-here}")
    (tmp_path / "itsm.yaml").write_text(config)
    refused = itsm("db", "upgrade", cwd=tmp_path)
    assert refused.returncode == 2
    assert "rules.sla.escalations.major: notify 'nobody-here' is neither an alert rule" in refused.stderr


def test_alerts_test_sends_a_sample_through_the_rules_channels_now(tmp_path: Path):
    with HttpSink() as sink:
        (tmp_path / "itsm.yaml").write_text(CONFIG.format(url=sink.url))
        done = itsm("alerts", "test", "new-p1", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "ops-hook: sent" in done.stdout
        (sample,) = alerts(sink)
        assert sample["ticket"] == "T-000000" and sample["rule"] == "new-p1"
    with HttpSink(default=400) as sink:
        (tmp_path / "itsm.yaml").write_text(CONFIG.format(url=sink.url))
        refused = itsm("alerts", "test", "new-p1", cwd=tmp_path)
        assert (
            refused.returncode == 1 and "ops-hook: failed" in refused.stdout and "refused the alert" in refused.stdout
        )
    unknown = itsm("alerts", "test", "nobody", cwd=tmp_path)
    assert (
        unknown.returncode == 2
        and "no alert rule named 'nobody' (alerts.rules: new-p1, duty-manager)" in unknown.stderr
    )
