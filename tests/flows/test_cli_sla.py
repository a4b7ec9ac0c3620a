"""`itsm sla check / due / explain / recompute` as people run them, on mail imported for real."""

import json
from email.message import EmailMessage

import pytest
from test_cli import itsm

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]

CONFIG = """database_url: sqlite:///store.db
calendars:
  office: {timezone: Europe/Paris, hours: {mon-fri: ["09:00-17:00"]}, holidays: [{country: FR}]}
rules:
  classification:
    - {name: outage, when: {field: text, contains: down}, set: {urgency: 1, impact: 1}}
  sla:
    policies:
      # targets of a second or so: they have passed when the check runs (mail's tickets start when received)
      - {name: p1, when: {field: priority, lte: 1}, targets: {first_response: 0.01m, resolution: 0.02m}}
      - {name: standard, calendar: office, targets: {resolution: 400h}}
    escalations:
      - {name: major, metric: resolution, at: 0.01m, actions: [{reassign: major-incidents}, {notify: duty-manager}]}
alerts:
  channels:
    duty-phone: {type: webhook, url: "http://127.0.0.1:9/never-pushed-here", secret: s}
  rules:
    - {name: duty-manager, events: [escalation], channels: [duty-phone]}
"""


def mail(path, subject):
    message = EmailMessage()
    message["From"] = "carl@example.com"
    message["To"] = "help@example.org"
    message["Subject"] = subject
    message["Message-ID"] = f"<{abs(hash(subject))}@example.com>"
    message.set_content("Please help")
    path.write_bytes(bytes(message))


@pytest.fixture
def hub(tmp_path):
    (tmp_path / "itsm.yaml").write_text(CONFIG)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    mail(inbox / "1.eml", "Mail server down")
    mail(inbox / "2.eml", "New mouse please")
    assert itsm("db", "upgrade", cwd=tmp_path).returncode == 0
    assert itsm("email", "import-dir", "inbox", cwd=tmp_path).returncode == 0
    return tmp_path


def test_check_due_and_explain(hub):
    checked = itsm("sla", "check", cwd=hub)
    assert checked.returncode == 0, checked.stderr
    assert "2 tickets checked" in checked.stdout and "4 level(s) fired" not in checked.stdout
    due = json.loads(itsm("sla", "due", "--within", "1h", "--json", cwd=hub).stdout)
    assert {(d["number"], d["metric"], d["state"]) for d in due} == {
        ("T-000001", "resolution", "breached"),
        ("T-000001", "first_response", "breached"),
    }
    explained = itsm("sla", "explain", "T-000001", cwd=hub)
    assert "resolution: policy 'p1', calendar 24x7; target 0h00" in explained.stdout
    assert "→ breached" in explained.stdout and "target reached at" in explained.stdout
    standard = itsm("sla", "explain", "2", cwd=hub).stdout
    assert "resolution: policy 'standard', calendar office; target 400h00" in standard
    assert "counted" in standard and "due " in standard
    shown = json.loads(itsm("tickets", "show", "1", "--json", cwd=hub).stdout)
    fired = [e["new_value"] for e in shown["audit"] if e["field"] == "sla:resolution"]
    assert fired == ["warn:50", "warn:75", "warn:90", "breach", "escalation:major"]
    assert shown["assignment_group"] == "major-incidents"
    again = itsm("sla", "check", cwd=hub)
    assert "0 level(s) fired" in again.stdout


def test_explain_says_what_stopped_a_clock_and_who_answered(hub):
    answered = itsm("tickets", "comment", "1", "Restarting the mail server now", "--actor", "user:dora", cwd=hub)
    assert answered.returncode == 0, answered.stderr
    assert itsm("tickets", "set-status", "1", "resolved", cwd=hub).returncode == 0, "set-status failed"
    explained = itsm("sla", "explain", "1", cwd=hub).stdout
    first = explained.split("first_response:")[1]
    assert "by the desk's first public reply (from user:dora)" in first
    assert "by status resolved" in explained.split("first_response:")[0]
    as_json = json.loads(itsm("sla", "explain", "1", "--json", cwd=hub).stdout)
    assert {c["metric"]: c["stopped_by"] for c in as_json["clocks"]} == {
        "resolution": "status resolved",
        "first_response": "the desk's first public reply",
    }


def test_recompute_after_a_policy_change(hub):
    assert itsm("sla", "check", cwd=hub).returncode == 0
    due = json.loads(itsm("sla", "due", "--json", cwd=hub).stdout)
    assert "T-000002" not in {d["number"] for d in due}  # 400 office hours: far away
    changed = "{name: standard, targets: {resolution: 0.01m}}"
    (hub / "itsm.yaml").write_text(
        CONFIG.replace("{name: standard, calendar: office, targets: {resolution: 400h}}", changed)
    )
    recomputed = itsm("sla", "recompute", cwd=hub)
    assert recomputed.returncode == 0, recomputed.stderr
    due = json.loads(itsm("sla", "due", "--json", cwd=hub).stdout)
    (clock,) = [d for d in due if d["number"] == "T-000002"]
    assert (clock["policy"], clock["calendar"], clock["target_seconds"], clock["state"]) == (
        "standard",
        "24x7",
        0.6,
        "breached",
    )


def test_a_bad_sla_config_names_the_key(tmp_path):
    (tmp_path / "itsm.yaml").write_text(
        "rules:\n  sla:\n    policies: [{name: a, calendar: nowhere, targets: {resolution: 1h}}]\n"
    )
    result = itsm("sla", "check", cwd=tmp_path)
    assert result.returncode == 2 and "rules.sla.policies[0].calendar" in result.stderr
    (tmp_path / "itsm.yaml").write_text("rules:\n  sla:\n    policies: [{name: a, targets: {resolution: soon}}]\n")
    result = itsm("sla", "check", cwd=tmp_path)
    assert result.returncode == 2 and "rules.sla.policies[0].targets.resolution" in result.stderr
    assert "'soon' is not a duration" in result.stderr
