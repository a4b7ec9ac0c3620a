"""The rules step on a real store: decisions written with their reasons, people and sources always win, a derived
priority follows its urgency, triage, round-robin turns kept across batches, and hub changes reaching push targets."""

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from itsm_core.mapping import Mapping
from itsm_core.models import RawRecord
from itsm_core.rules import Rules, RulesConfig
from itsm_core.rules.engine import GROUP_PICK, MATRIX
from itsm_core.store.tables import AuditEventRow, RoutingTurnRow
from itsm_core.store.tickets import get_ticket, set_fields, set_statuses
from itsm_core.sync.decide import apply_rules, dispatch_waiting
from itsm_core.sync.ingest import SourcePipeline, ingest_batch
from itsm_core.sync.propagate import Propagator

MAPPING = Mapping(
    source_type="webhook",
    fields={"title": "summary", "description": "body", "requester": "who", "urgency": "urgency", "category": "cat"},
    required=["requester"],
)
AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # a Monday
SECTION = {
    "classification": [
        {
            "name": "vpn",
            "when": {"field": "text", "contains_any": ["vpn", "anyconnect"]},
            "set": {"category": "network", "intent": "vpn_access"},
        },
        {"name": "outage", "when": {"field": "text", "regex": r"\bdown\b"}, "set": {"urgency": 1, "impact": 1}},
    ],
    "routing": [{"name": "net", "when": {"field": "category", "equals": "network"}, "group": "network"}],
    "triage_group": "triage",
    "groups": {"network": {"agents": [{"name": "ann"}, {"name": "bob"}]}},
}


class Recorder:
    """A push target that records what it hears (the real ones are tested with their systems)."""

    name = "recorder"

    def __init__(self):
        self.heard = []

    def plan(self, conn, changes):
        self.heard += changes
        return []


def pipeline(section=SECTION, target=None) -> SourcePipeline:
    targets = (target,) if target else ()
    return SourcePipeline(
        "hooks", json.loads, MAPPING, Rules(RulesConfig.model_validate(section)), propagator=Propagator(targets)
    )


def record(external_id, summary, **fields) -> RawRecord:
    body = {"summary": summary, "who": "ann@example.org", **fields}
    return RawRecord(external_id, json.dumps(body).encode(), "json", AT)


def ingest(store, *records, section=SECTION, target=None):
    with store.transaction() as conn:
        return ingest_batch(conn, pipeline(section, target), list(records))


def ticket(store, tid):
    with store.connect() as conn:
        return get_ticket(conn, tid)


def test_a_batch_is_classified_prioritised_and_routed_with_reasons(store):
    target = Recorder()
    report = ingest(store, record("1", "VPN is down"), record("2", "Printer jams"), target=target)
    assert report.rules.decided == {
        "category": 1,
        "intent": 1,
        "urgency": 1,
        "impact": 1,
        "priority": 2,
        "assignment_group": 2,
        "assignee": 1,
    }
    assert report.rules.triaged == 1
    vpn, printer = ticket(store, 1), ticket(store, 2)
    assert (vpn["category"], vpn["intent"], vpn["priority"], vpn["assignment_group"], vpn["assignee"]) == (
        "network",
        "vpn_access",
        1,
        "network",
        "ann",
    )
    assert (vpn["classified_by"], vpn["classification_confidence"]) == ("rule", 1.0)
    assert vpn["decided_by"]["category"] == "rule:vpn" and vpn["decided_by"]["priority"] == MATRIX
    assert (printer["category"], printer["assignment_group"], printer["assignee"]) == (None, "triage", None)
    events = {e["field"]: e for e in vpn["audit"] if e["actor"] != "source:hooks"}
    assert events["category"]["actor"] == "rule:vpn" and events["category"]["detail"]["rule"] == "vpn"
    assert [c["agent"] for c in events["assignee"]["detail"]["candidates"]] == ["ann", "bob"]
    assert events["assignee"]["detail"]["rule"] == "net" and events["assignee"]["source"] == "hooks"
    # the push targets hear the rules' decisions as the hub's own changes
    hub = {c.ticket_id: c.fields for c in target.heard if c.origin is None}
    assert hub[1] >= {"category", "assignment_group", "assignee", "priority"}


def test_a_second_landing_keeps_decisions_and_changes_nothing(store):
    ingest(store, record("1", "VPN is down"))
    before = ticket(store, 1)
    report = ingest(store, record("1", "VPN is down", body="still"))
    after = ticket(store, 1)
    assert report.rules.decided == {}
    assert {k: after[k] for k in ("category", "priority", "assignee")} == {
        k: before[k] for k in ("category", "priority", "assignee")
    }


def test_a_person_s_category_survives_every_later_landing(store):
    ingest(store, record("1", "VPN broken"))
    with store.transaction() as conn:
        set_fields(conn, 1, {"category": "access"}, "user:ops")
    ingest(store, record("1", "VPN broken", body="anyconnect says no"))
    row = ticket(store, 1)
    assert (row["category"], row["classified_by"], row["classification_confidence"]) == ("access", "human", None)
    assert "category" not in row["decided_by"]


def test_confirming_a_rule_s_category_makes_it_human(store):
    ingest(store, record("1", "VPN broken"))
    with store.transaction() as conn:
        assert set_fields(conn, 1, {"category": "network"}, "user:ops") == {"classified_by": "human"}
    row = ticket(store, 1)
    assert row["classified_by"] == "human"
    assert [(e["field"], e["new_value"]) for e in row["audit"]][-1] == ("classified_by", "human")


def test_a_source_category_is_the_source_s(store):
    ingest(store, record("1", "VPN broken", cat="access"))
    row = ticket(store, 1)
    assert (row["category"], row["classified_by"], row["intent"]) == ("access", "source", "vpn_access")


def test_a_derived_priority_follows_a_new_urgency_but_not_a_chosen_one(store):
    ingest(store, record("1", "Question"), record("2", "Question 2"))
    assert ticket(store, 1)["priority"] == 5
    with store.transaction() as conn:
        set_fields(conn, 1, {"urgency": 1}, "user:ops")
        apply_rules(conn, pipeline().rules, {1: {"urgency"}})
    assert ticket(store, 1)["priority"] == 3
    ingest(store, record("1", "Question", urgency=2))  # the source changes the urgency
    assert ticket(store, 1)["priority"] == 4
    with store.transaction() as conn:  # a person sets the priority: from then on it is theirs
        set_fields(conn, 2, {"priority": 2}, "user:ops")
        set_fields(conn, 2, {"urgency": 1}, "user:ops")
        apply_rules(conn, pipeline().rules, {2: {"urgency"}})
    assert ticket(store, 2)["priority"] == 2


def test_a_triaged_ticket_is_routed_once_a_person_classifies_it(store):
    ingest(store, record("1", "Strange noise"))
    assert ticket(store, 1)["assignment_group"] == "triage"
    with store.transaction() as conn:
        set_fields(conn, 1, {"category": "network"}, "user:triager")
        apply_rules(conn, pipeline().rules, {1: {"category"}})
    row = ticket(store, 1)
    assert (row["assignment_group"], row["assignee"]) == ("network", "ann")


def test_round_robin_turns_outlive_the_batch(store):
    ingest(store, record("1", "vpn one"))
    with store.transaction() as conn:
        set_statuses(conn, {1: "resolved"}, "user:ann")  # ann's load is back to zero: loads tie again
    ingest(store, record("2", "vpn two"))
    with store.transaction() as conn:
        set_statuses(conn, {2: "resolved"}, "user:bob")
    ingest(store, record("3", "vpn three"))
    assert [ticket(store, i)["assignee"] for i in (1, 2, 3)] == ["ann", "bob", "ann"]
    with store.connect() as conn:
        turns = dict(conn.execute(select(RoutingTurnRow.agent, RoutingTurnRow.turn)).all())
    assert turns == {"ann": 3, "bob": 2}


def test_the_load_counts_open_tickets_only(store):
    ingest(store, record("1", "vpn one"), record("2", "vpn two"))  # ann, bob
    with store.transaction() as conn:
        set_statuses(conn, {2: "resolved"}, "user:bob")
    ingest(store, record("3", "vpn three"))
    assert ticket(store, 3)["assignee"] == "bob"


def test_audit_details_are_kept(store):
    ingest(store, record("1", "vpn"))
    with store.connect() as conn:
        details = conn.execute(select(AuditEventRow.field, AuditEventRow.detail).order_by(AuditEventRow.id)).all()
    assert any(field == "assignee" and detail["chosen"] == "ann" for field, detail in details)


def test_tickets_waiting_in_a_queue_go_to_an_agent_once_one_is_on_duty(store):
    now = datetime.now(UTC)
    away = [{"start": (now - timedelta(days=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}]
    section = {
        **SECTION,
        "groups": {
            "network": {"agents": [{"name": "ann", "absences": away}, {"name": "bob", "absences": away}]},
            "desk": {"auto_assign": False, "agents": [{"name": "carl"}]},
        },
    }
    ingest(store, record("1", "vpn down"), record("2", "vpn slow"), section=section)
    assert [ticket(store, i)["assignee"] for i in (1, 2)] == [None, None]  # everyone away: they wait
    rules = Rules(RulesConfig.model_validate(section))
    with store.transaction() as conn:
        set_fields(conn, 2, {"assignment_group": "desk"}, "user:ops")  # a person sends one to a group not auto-assigned
        assert dispatch_waiting(conn, rules, now=now + timedelta(minutes=30)) == ([], 0)  # still away
    with store.transaction() as conn:
        changes, assigned = dispatch_waiting(conn, rules, now=now + timedelta(hours=2))  # back
    assert assigned == 1 and [c.ticket_id for c in changes] == [1]
    first = ticket(store, 1)
    assert first["assignee"] in {"ann", "bob"} and ticket(store, 2)["assignee"] is None
    (event,) = [e for e in first["audit"] if e["field"] == "assignee"]
    assert event["actor"] == f"{GROUP_PICK}network" and event["at"] == now + timedelta(hours=2)
    with store.transaction() as conn:
        assert dispatch_waiting(conn, rules, now=now + timedelta(hours=3)) == ([], 0)  # nothing waits any more
