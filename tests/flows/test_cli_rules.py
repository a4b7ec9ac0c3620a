"""`itsm rules simulate / explain` and `itsm tickets classify` as people run them, on mail imported for real."""

import json
from email.message import EmailMessage

import pytest
from test_cli import itsm

RULES = """
rules:
  classification:
    - name: vpn
      when: {field: text, contains_any: [vpn, anyconnect]}
      set: {category: network, intent: vpn_access}
    - name: outage
      when: {field: text, regex: '\\bdown\\b'}
      set: {urgency: 1, impact: 2}
  triage_group: triage
  routing:
    - {name: net, when: {field: category, equals: network}, group: network, skills: [vpn]}
  fallback_group: service-desk
  groups:
    network:
      agents:
        - {name: ann@example.org, skills: [vpn]}
        - {name: bob@example.org}
"""


def mail(path, subject, body="Hello"):
    message = EmailMessage()
    message["From"] = "Carl <carl@example.com>"
    message["To"] = "help@example.org"
    message["Subject"] = subject
    message["Message-ID"] = f"<{abs(hash(subject))}@example.com>"
    message.set_content(body)
    path.write_bytes(bytes(message))


@pytest.fixture
def hub(tmp_path):
    (tmp_path / "itsm.yaml").write_text("database_url: sqlite:///store.db\n" + RULES)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    mail(inbox / "1.eml", "VPN is down", "AnyConnect says the gateway is unreachable")
    mail(inbox / "2.eml", "Printer jam on floor 2")
    mail(inbox / "3.eml", "Cannot open the VPN")
    assert itsm("db", "upgrade", cwd=tmp_path).returncode == 0
    imported = itsm("email", "import-dir", "inbox", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    return tmp_path


def show(hub, number):
    result = itsm("tickets", "show", str(number), "--json", cwd=hub)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_imported_mail_is_classified_prioritised_and_routed(hub):
    vpn_down, printer, vpn = show(hub, 1), show(hub, 2), show(hub, 3)
    assert (vpn_down["category"], vpn_down["intent"], vpn_down["urgency"], vpn_down["priority"]) == (
        "network",
        "vpn_access",
        1,
        2,
    )
    assert (vpn_down["assignment_group"], vpn_down["assignee"]) == ("network", "ann@example.org")
    assert (printer["category"], printer["assignment_group"], printer["assignee"]) == (None, "triage", None)
    assert vpn["assignee"] == "ann@example.org"  # she has the skill the route wants: skills come before load


def test_explain_tells_who_set_each_field_and_why(hub):
    result = itsm("rules", "explain", "T-000001", cwd=hub)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "classification rule 'vpn' matched" in text and "matches: text contains 'vpn'" in text
    assert "priority matrix: impact 2 × urgency 1" in text
    assert "routing rule 'net'" in text and "candidate ann@example.org: skills 1" in text
    assert "today's rules would change nothing" in text
    as_json = json.loads(itsm("rules", "explain", "1", "--json", cwd=hub).stdout)
    assignee = next(f for f in as_json["fields"] if f["field"] == "assignee")
    assert assignee["actor"] == "route:net" and assignee["detail"]["chosen"] == "ann@example.org"


def test_explain_an_agent_picked_within_a_group_a_person_chose(hub):
    moved = itsm("tickets", "assign", "2", "--group", "network", cwd=hub)  # the printer ticket, out of triage
    assert moved.returncode == 0, moved.stderr
    assert show(hub, 2)["assignee"] in {"ann@example.org", "bob@example.org"}
    text = itsm("rules", "explain", "2", cwd=hub).stdout
    assignee = next(line for line in text.splitlines() if line.strip().startswith("assignee"))
    assert "an agent of group 'network'" in assignee and "UTC)" in assignee  # who picked it, and when
    assert "set by user:cli" in next(line for line in text.splitlines() if "assignment_group" in line)


def test_simulate_reports_what_other_rules_would_change_and_writes_nothing(hub):
    (hub / "new.yaml").write_text(
        RULES.replace(
            "  triage_group: triage\n",
            "    - name: printers\n"
            "      when: {field: text, contains: printer}\n"
            "      set: {category: printing}\n"
            "  triage_group: triage\n",
        )
    )
    before = [show(hub, n) for n in (1, 2, 3)]
    result = itsm("rules", "simulate", "--since", "1d", "--rules", "new.yaml", "--json", cwd=hub)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["tickets"], report["changed_tickets"]) == (3, 1)
    assert report["fields"] == {"category": 1, "assignment_group": 1}
    assert report["transitions"]["assignment_group"] == [{"from": "triage", "to": "service-desk", "count": 1}]
    assert [show(hub, n) for n in (1, 2, 3)] == before
    table = itsm("rules", "simulate", "--rules", "new.yaml", cwd=hub)
    assert "would change 1 of them (nothing was written)" in table.stdout
    assert "∅ → printing" in table.stdout


def test_simulate_with_a_broken_rules_file_exits_2_naming_the_key(hub):
    (hub / "bad.yaml").write_text(
        "classification:\n  - {name: x, when: {field: title, contain: a}, set: {category: y}}\n"
    )
    result = itsm("rules", "simulate", "--rules", "bad.yaml", cwd=hub)
    assert result.returncode == 2
    assert "rules.classification[0].when" in result.stderr and result.stderr.count("\n") == 1


def test_a_person_classifies_a_triaged_ticket_and_it_is_routed(hub):
    result = itsm("tickets", "classify", "T-000002", "--category", "network", "--actor", "user:tina", cwd=hub)
    assert result.returncode == 0, result.stderr
    printer = show(hub, 2)
    assert (printer["category"], printer["classified_by"], printer["assignment_group"]) == (
        "network",
        "human",
        "network",
    )
    explained = itsm("rules", "explain", "2", cwd=hub).stdout
    assert "set by user:tina" in explained


def test_a_new_urgency_moves_a_derived_priority(hub):
    assert show(hub, 3)["priority"] == 5
    assert itsm("tickets", "classify", "3", "--urgency", "1", cwd=hub).returncode == 0
    assert show(hub, 3)["priority"] == 3
    assert itsm("tickets", "classify", "3", cwd=hub).returncode == 2  # nothing to set
