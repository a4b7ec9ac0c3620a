"""The rules engine, pure: classification order, human override, the model's threshold and triage, the priority
matrix, routing by rule, skills, load, round-robin, working hours and absences."""

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from itsm_core.rules import Rules, RulesConfig
from itsm_core.rules.engine import MATRIX, TRIAGE

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday


def ticket(tid=1, title="Help", description="", **fields):
    row = {
        "id": tid,
        "title": title,
        "description": description,
        "status": "new",
        "requester": "ann@example.org",
        "source_type": "email",
        "decided_by": None,
        "classified_by": None,
        "classification_confidence": None,
    }
    for name in ("category", "subcategory", "intent", "impact", "urgency", "priority", "assignment_group", "assignee"):
        row[name] = None
    row.update(fields)
    return row


def rules(**section) -> Rules:
    return Rules(RulesConfig.model_validate(section))


def decide(engine, *rows, workload=None, now=NOW, redo=None):
    workload = workload or engine.new_workload()
    return engine.decide(list(rows), workload, now, redo)


def values(decisions, tid=1):
    return {d.field: d.value for d in decisions[tid]}


def by(decisions, tid=1):
    return {d.field: d.by for d in decisions[tid]}


VPN = {"name": "vpn", "when": {"field": "text", "contains_any": ["vpn", "anyconnect"]}, "set": {"category": "network"}}
OUTAGE = {"name": "outage", "when": {"field": "text", "regex": r"\b(down|all users)\b"}, "set": {"urgency": 1}}


# --- classification -------------------------------------------------------------------------------------------


def test_each_field_takes_the_first_matching_rule_that_sets_it():
    engine = rules(
        classification=[
            {"name": "vpn-intent", "when": VPN["when"], "set": {"category": "network", "intent": "vpn_access"}},
            {"name": "broad", "when": {"field": "text", "contains": "access"}, "set": {"category": "access"}},
            {"name": "fills", "when": {"field": "text", "contains": "access"}, "set": {"intent": "x", "impact": 3}},
        ]
    )
    decisions = decide(engine, ticket(title="VPN access broken"))
    assert values(decisions).items() >= {"category": "network", "intent": "vpn_access", "impact": 3}.items()
    assert by(decisions)["category"] == "rule:vpn-intent" and by(decisions)["impact"] == "rule:fills"


def test_a_rule_sees_what_earlier_rules_decided():
    engine = rules(
        classification=[
            VPN,
            {"name": "net-urgent", "when": {"field": "category", "equals": "network"}, "set": {"urgency": 2}},
        ]
    )
    assert values(decide(engine, ticket(title="vpn"))).items() >= {"category": "network", "urgency": 2}.items()
    assert "urgency" not in values(decide(engine, ticket(title="printer")))


def test_no_rule_matching_leaves_the_category_empty():
    decisions = decide(rules(classification=[VPN]), ticket(title="Printer jam"))
    assert "category" not in values(decisions)


@pytest.mark.parametrize("set_by", ["human", "source"])
def test_values_a_person_or_the_source_set_are_never_overwritten(set_by):
    engine = rules(classification=[VPN, OUTAGE])
    row = ticket(title="VPN down", category="hardware", classified_by=set_by, urgency=3)
    decisions = decide(engine, row)
    assert "category" not in values(decisions) and "urgency" not in values(decisions)


def test_redo_decides_a_rules_value_again():
    engine = rules(classification=[VPN])
    row = ticket(title="vpn", category="access", classified_by="rule", decided_by={"category": "rule:old"})
    assert "category" not in values(decide(engine, row))
    assert values(decide(engine, row, redo={1: ["category"]}))["category"] == "network"


# --- the model and triage -------------------------------------------------------------------------------------


@dataclass
class Guess:
    label: str
    confidence: float


class FakeModel:
    """Stands for a trained TextModel (tested in test_model.py): a label and confidence per keyword."""

    version = "category-test-1"

    def __init__(self, table):
        self.table = table
        self.calls = []

    def predict(self, texts):
        self.calls.append(list(texts))
        out = []
        for text in texts:
            hit = next((guess for word, guess in self.table.items() if word in text.lower()), ("other", 0.2))
            out.append(Guess(*hit))
        return out


def with_model(model, **section):
    section.setdefault("models", [{"target": "category", "path": "unused.joblib", "min_confidence": 0.6}])
    return Rules(RulesConfig.model_validate(section), load_model=lambda path: model)


def test_the_model_decides_above_its_confidence_and_records_it():
    model = FakeModel({"outlook": ("email", 0.91)})
    decisions = decide(with_model(model), ticket(title="Outlook keeps crashing"))
    (category,) = [d for d in decisions[1] if d.field == "category"]
    assert (category.value, category.by, category.confidence) == ("email", "model:category-test-1", 0.91)


def test_below_the_confidence_the_ticket_goes_to_triage_with_the_best_guess():
    model = FakeModel({"weird": ("hardware", 0.41)})
    engine = with_model(model, triage_group="triage", fallback_group="service-desk")
    decisions = decide(engine, ticket(title="Something weird"))
    assert "category" not in values(decisions)
    (group,) = [d for d in decisions[1] if d.field == "assignment_group"]
    assert (group.value, group.by) == ("triage", TRIAGE)
    assert group.detail["best_guess"] == {
        "model": "category-test-1",
        "label": "hardware",
        "confidence": 0.41,
        "min_confidence": 0.6,
    }


def test_the_threshold_is_inclusive_and_configurable():
    model = FakeModel({"x": ("network", 0.75)})
    strict = with_model(model, models=[{"target": "category", "path": "m", "min_confidence": 0.8}])
    lenient = with_model(model, models=[{"target": "category", "path": "m", "min_confidence": 0.75}])
    assert "category" not in values(decide(strict, ticket(title="x")))
    assert values(decide(lenient, ticket(title="x")))["category"] == "network"


def test_rules_come_before_the_model_which_sees_only_what_they_left():
    model = FakeModel({"printer": ("printing", 0.9)})
    engine = with_model(model, classification=[VPN])
    decisions = decide(engine, ticket(1, title="vpn"), ticket(2, title="printer"), ticket(3, category="hardware"))
    assert values(decisions, 1)["category"] == "network" and values(decisions, 2)["category"] == "printing"
    assert "category" not in values(decisions, 3)
    assert model.calls == [["printer\n"]]  # one batch call, only for the ticket no rule or person classified


def test_a_missing_model_is_reported_and_the_rules_go_on(tmp_path):
    engine = Rules(
        RulesConfig.model_validate(
            {"classification": [VPN], "models": [{"target": "category", "path": str(tmp_path / "none.joblib")}]}
        )
    )
    assert engine.models == {} and "itsm classify train" in engine.model_problems[0]
    assert values(decide(engine, ticket(title="vpn")))["category"] == "network"


# --- priority -------------------------------------------------------------------------------------------------


def test_priority_comes_from_the_matrix_with_urgency_cues():
    engine = rules(classification=[OUTAGE], priority={"matrix": [[1, 2, 3], [2, 3, 4], [3, 4, 5]]})
    assert values(decide(engine, ticket(title="Mail is down", impact=2)))["priority"] == 2
    assert values(decide(engine, ticket(title="Question", impact=2)))["priority"] == 4  # urgency default 3
    plain = values(decide(engine, ticket(title="Question")))
    assert plain["priority"] == 5 and by(decide(engine, ticket()))["priority"] == MATRIX


def test_a_bigger_matrix_and_an_upstream_priority():
    engine = rules(priority={"matrix": [[1, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 5]], "default_impact": 4})
    assert values(decide(engine, ticket(urgency=1)))["priority"] == 3
    assert "priority" not in values(decide(engine, ticket(urgency=1, priority=2)))  # the source's stays


def test_a_derived_priority_is_recomputed_when_asked():
    engine = rules()
    row = ticket(impact=1, urgency=1, priority=5, decided_by={"priority": MATRIX})
    assert values(decide(engine, row, redo={1: ["priority"]}))["priority"] == 1


def test_rule_levels_outside_the_matrix_are_refused():
    with pytest.raises(ValueError, match=r"matrix has 1\.\.3"):
        RulesConfig.model_validate({"classification": [{**OUTAGE, "set": {"urgency": 4}}]})


# --- routing --------------------------------------------------------------------------------------------------

ROUTES = [
    {"name": "net", "when": {"field": "category", "equals": "network"}, "group": "network", "skills": ["vpn"]},
    {"name": "laptops", "when": {"field": "ci_classes", "contains": "computer"}, "group": "desktop"},
]


def test_the_first_matching_route_picks_the_group_else_the_fallback():
    engine = rules(classification=[VPN], routing=ROUTES, fallback_group="service-desk")
    decisions = decide(
        engine, ticket(1, title="vpn"), ticket(2, title="slow", ci_classes=["computer"]), ticket(3, title="?")
    )
    assert [values(decisions, i)["assignment_group"] for i in (1, 2, 3)] == ["network", "desktop", "service-desk"]
    assert by(decisions, 1)["assignment_group"] == "route:net"
    assert by(decisions, 3)["assignment_group"] == "rules:fallback-group"


def test_closed_tickets_and_assigned_groups_are_not_routed():
    engine = rules(routing=ROUTES, fallback_group="service-desk")
    decisions = decide(engine, ticket(1, status="closed"), ticket(2, assignment_group="dba"))
    assert "assignment_group" not in values(decisions, 1) and "assignment_group" not in values(decisions, 2)


def team(*agents, auto_assign=True):
    return {"network": {"auto_assign": auto_assign, "agents": list(agents)}}


def routed(**section):
    return rules(classification=[VPN], routing=ROUTES, **section)


def test_least_load_weighted_by_priority():
    engine = routed(groups=team({"name": "ann"}, {"name": "bob"}))
    workload = engine.new_workload()
    workload.add("ann", 1)  # one P1 weighs 5
    workload.add("bob", 4)
    workload.add("bob", 5)  # two small ones weigh 2 + 1
    decisions = decide(engine, ticket(title="vpn"), workload=workload)
    assignee = next(d for d in decisions[1] if d.field == "assignee")
    assert assignee.value == "bob" and assignee.detail["why"] == "least load"
    assert {c["agent"]: c["load"] for c in assignee.detail["candidates"]} == {"ann": 5.0, "bob": 3.0}


def test_skills_come_before_load_and_set_the_confidence():
    engine = routed(groups=team({"name": "ann", "skills": ["VPN"]}, {"name": "bob"}))
    workload = engine.new_workload()
    workload.add("ann", 1)
    assignee = next(d for d in decide(engine, ticket(title="vpn"), workload=workload)[1] if d.field == "assignee")
    assert (assignee.value, assignee.confidence, assignee.detail["why"]) == ("ann", 1.0, "best skills match")
    engine = routed(groups=team({"name": "bob"}))
    assignee = next(d for d in decide(engine, ticket(title="vpn"))[1] if d.field == "assignee")
    assert (assignee.value, assignee.confidence) == ("bob", 0.0)  # nobody has the skill: assigned, unsure


def test_round_robin_is_fair_when_loads_are_equal():
    engine = routed(groups=team({"name": "ann"}, {"name": "bob"}, {"name": "cyd"}))
    workload = engine.new_workload()
    order = []
    for n in range(30):  # each ticket is solved before the next arrives: loads are always equal
        assignee = values(decide(engine, ticket(n, title="vpn"), workload=workload), n)["assignee"]
        workload.remove(assignee, 5)
        order.append(assignee)
    assert Counter(order) == {"ann": 10, "bob": 10, "cyd": 10}
    assert order[:6] == ["ann", "bob", "cyd", "ann", "bob", "cyd"]


def test_a_batch_spreads_like_tickets_arriving_one_by_one():
    engine = routed(groups=team({"name": "ann"}, {"name": "bob"}))
    decisions = decide(engine, *(ticket(n, title="vpn") for n in range(6)))
    assert Counter(values(decisions, n)["assignee"] for n in range(6)) == {"ann": 3, "bob": 3}


class Hours:
    def __init__(self, open_):
        self.open_ = open_

    def is_open(self, at):
        return self.open_


def test_absent_and_off_shift_agents_are_skipped():
    section = RulesConfig.model_validate(
        {
            "classification": [VPN],
            "routing": ROUTES,
            "groups": team(
                {"name": "ann", "absences": [{"start": date(2026, 11, 20), "end": date(2026, 11, 23)}]},
                {"name": "bob", "calendar": "night"},
                {"name": "cyd", "calendar": "day"},
            ),
        }
    )
    engine = Rules(section, {"night": Hours(False), "day": Hours(True)})
    assignee = next(d for d in decide(engine, ticket(title="vpn"))[1] if d.field == "assignee")
    assert assignee.value == "cyd"
    away = {c["agent"]: c.get("away") for c in assignee.detail["candidates"]}
    assert away == {
        "ann": "absent until 2026-11-24T00:00:00+00:00",
        "bob": "outside working hours (night)",
        "cyd": None,
    }
    # the absence ends with its last day: on the 24th Ann is back
    later = decide(engine, ticket(title="vpn"), now=datetime(2026, 11, 24, 9, tzinfo=UTC))
    assert values(later)["assignee"] == "ann"


def test_nobody_on_duty_leaves_the_ticket_in_the_group_queue_and_says_why():
    engine = Rules(
        RulesConfig.model_validate(
            {"classification": [VPN], "routing": ROUTES, "groups": team({"name": "bob", "calendar": "night"})}
        ),
        {"night": Hours(False)},
    )
    decisions = decide(engine, ticket(title="vpn"))
    assert values(decisions) == {"category": "network", "priority": 5, "assignment_group": "network"}
    group = next(d for d in decisions[1] if d.field == "assignment_group")
    assert group.detail["agent"]["why"] == "nobody in the group is on duty"


def test_a_group_without_auto_assign_is_a_queue():
    engine = routed(groups=team({"name": "ann"}, auto_assign=False))
    assert "assignee" not in values(decide(engine, ticket(title="vpn")))


def test_an_unknown_calendar_is_a_config_error():
    from itsm_core.config import parse_config
    from itsm_core.errors import ConfigError

    with pytest.raises(ConfigError, match="calendar"):
        parse_config("rules: {groups: {g: {agents: [{name: a, calendar: nowhere}]}}}", origin="t.yaml")


def test_a_model_may_predict_urgency_which_then_sets_the_priority():
    model = FakeModel({"everyone": ("1", 0.9), "strange": ("7", 0.95)})
    engine = with_model(model, models=[{"target": "urgency", "path": "m", "min_confidence": 0.6}])
    decisions = decide(engine, ticket(1, title="everyone is blocked", impact=2), ticket(2, title="strange"))
    assert values(decisions, 1)["urgency"] == 1 and values(decisions, 1)["priority"] == 2
    assert "urgency" not in values(decisions, 2)  # a level outside the matrix is no urgency
