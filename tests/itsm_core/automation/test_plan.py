"""Which ticket changes start which automation: one run per ticket ever, the first matching rule, only open, recent
and confidently classified tickets; in ask mode, the requester's reply decides."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from itsm_core.automation.plan import AutomationPlanner, confidences
from itsm_core.automation.runs import advance, run_of
from itsm_core.automation.spec import AutomationConfig
from itsm_core.models import Comment, Ticket, TicketStatus, utcnow
from itsm_core.store.audit import audit_event
from itsm_core.store.comments import add_comments
from itsm_core.store.tables import AuditEventRow, OutboxRow, TicketRow
from itsm_core.store.tickets import TicketWrite, upsert_tickets
from itsm_core.sync.decide import read_for_rules
from itsm_core.sync.propagate import Change

outbox = OutboxRow.__table__
tickets = TicketRow.__table__
audit_events = AuditEventRow.__table__

RESET = {
    "name": "reset-password",
    "when": {"field": "intent", "equals": "password_reset"},
    "run_deployment": {
        "name": "reset-password/ldap",
        "parameters": {
            "directory": "corp",
            "ticket": "{{ number }}",
            "requester": "{{ ticket.requester }}",
            "also": ["{{ ticket.title }}", 3],
        },
    },
}


def config(*rules: dict[str, Any], **extra: Any) -> AutomationConfig:
    return AutomationConfig.model_validate({"rules": list(rules or [RESET]), **extra})


def rule(name: str, when: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "when": when, "run_deployment": {"name": f"{name}/default"}, **extra}


def ticket(
    store,
    key: str,
    *,
    intent: str | None = "password_reset",
    title: str = "Forgot my password",
    status: TicketStatus = TicketStatus.NEW,
    opened_hours_ago: float = 1,
    **fields: Any,
) -> int:
    made = Ticket(title=title, source_type="webhook", intent=intent, status=status, requester="ann@example.org",
                  created_at=utcnow() - timedelta(hours=opened_hours_ago), **fields)  # fmt: skip
    with store.transaction() as conn:
        (result,) = upsert_tickets(conn, "hooks", "source:hooks", [TicketWrite(key, made, "h", frozenset())])
    return result.ticket_id


def decided_by(store, ticket_id: int, actor: str, *confidence: float) -> None:
    """The intent as the rules step leaves it when `actor` decided it: `decided_by` and one audit event per
    decision (with the model's confidence in its detail), as `itsm_core/sync/decide.py` writes them."""
    with store.transaction() as conn:
        conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(decided_by={"intent": actor}))
        for value in confidence:
            detail = {"confidence": value, "label": "password_reset"}
            event = audit_event("ticket", ticket_id, "intent", None, "password_reset", actor, None, utcnow(), detail)
            conn.execute(insert(audit_events), [event])


def announce(store, planner: AutomationPlanner, *changes: Change) -> dict[str, int]:
    with store.transaction() as conn:
        return planner.announce(conn, changes)


def run(store, ticket_id: int) -> dict[str, Any] | None:
    with store.connect() as conn:
        return run_of(conn, ticket_id)


def queued(store) -> list[tuple[int, dict[str, Any]]]:
    with store.connect() as conn:
        query = select(outbox.c.ticket_id, outbox.c.fields).where(outbox.c.target_system == "automation")
        return [(ticket_id, fields) for ticket_id, fields in conn.execute(query.order_by(outbox.c.id))]


def stages(store) -> list[tuple[int, str, str]]:
    return [(ticket_id, fields["stage"], fields["rule"]) for ticket_id, fields in queued(store)]


def automation_events(store, ticket_id: int) -> list[tuple[Any, Any, str, Any]]:
    with store.connect() as conn:
        query = select(audit_events.c.old_value, audit_events.c.new_value, audit_events.c.actor, audit_events.c.detail)
        query = query.where(audit_events.c.entity_id == ticket_id, audit_events.c.field == "automation")
        return [tuple(row) for row in conn.execute(query.order_by(audit_events.c.id))]


def explain(store, planner: AutomationPlanner, ticket_id: int) -> tuple[str | None, list[str]]:
    with store.connect() as conn:
        (row,) = read_for_rules(conn, [ticket_id])
        sure = confidences(conn, [row])[ticket_id]
        chosen, reasons = planner.explain(row, sure, run_of(conn, ticket_id))
    return (chosen.name if chosen else None), reasons


# --- starting ---------------------------------------------------------------------------------------------------


def test_a_new_matching_ticket_gets_one_run_and_one_start_item(store):
    t = ticket(store, "a")
    assert announce(store, AutomationPlanner(config()), Change(t, created=True)) == {"automation": 1}
    started = run(store, t)
    assert t == 1 and started["state"] == "queued"
    assert started["rule"] == "reset-password" and started["deployment"] == "reset-password/ldap"
    assert started["parameters"] == {
        "directory": "corp",
        "ticket": "T-000001",
        "requester": "ann@example.org",
        "also": ["Forgot my password", 3],
    }
    assert started["reason"] is None and started["flow_run_id"] is None
    ((ticket_id, fields),) = queued(store)
    key = fields.pop("idempotency_key")
    assert ticket_id == t and fields == {"stage": "run", "rule": "reset-password", "ticket": "T-000001"}
    assert key.startswith("itsm-automation-") and len(key) > len("itsm-automation-") + 30
    assert automation_events(store, t) == [
        (None, {"rule": "reset-password", "state": "queued"}, "automation:reset-password", None)
    ]


def test_the_same_change_again_or_a_later_one_starts_nothing_more(store):
    planner = AutomationPlanner(config())
    t = ticket(store, "a")
    assert announce(store, planner, Change(t, created=True)) == {"automation": 1}
    first = queued(store)
    assert announce(store, planner, Change(t, created=True)) == {}  # a retried page
    with store.transaction() as conn:
        conn.execute(update(tickets).where(tickets.c.id == t).values(priority=1, title="Still locked out"))
    assert announce(store, planner, Change(t, frozenset({"priority", "title"}))) == {}
    assert queued(store) == first
    assert run(store, t)["parameters"]["also"] == ["Forgot my password", 3]  # rendered once, when it matched
    assert len(automation_events(store, t)) == 1
    assert explain(store, planner, t) == ("reset-password", ["it already has its automation (reset-password, queued)"])


def test_the_first_matching_rule_wins_and_a_ticket_matching_none_gets_nothing(store):
    by_title = rule("by-title", {"field": "title", "contains": "password"})
    by_intent = rule("by-intent", {"field": "intent", "equals": "password_reset"})
    vpn = rule("vpn", {"field": "intent", "equals": "vpn_access"})
    a, b = ticket(store, "a"), ticket(store, "b")
    other = ticket(store, "c", intent="printer_jam", title="Printer jams")
    announce(store, AutomationPlanner(config(vpn, by_title, by_intent)), Change(a, created=True))
    announce(store, AutomationPlanner(config(vpn, by_intent, by_title)), Change(b, created=True))
    planner = AutomationPlanner(config(vpn, by_title, by_intent))
    assert announce(store, planner, Change(other, created=True)) == {}
    assert (run(store, a)["rule"], run(store, b)["rule"]) == ("by-title", "by-intent")
    assert run(store, other) is None
    assert stages(store) == [(a, "run", "by-title"), (b, "run", "by-intent")]
    assert explain(store, planner, other) == (
        None,
        ["vpn: its condition does not hold", "by-title: its condition does not hold",
         "by-intent: its condition does not hold"],
    )  # fmt: skip
    assert explain(store, AutomationPlanner(config(vpn, by_title)), ticket(store, "d")) == (
        "by-title",
        ["vpn: its condition does not hold", "by-title: matches (auto)"],
    )


# --- confidence -------------------------------------------------------------------------------------------------


def test_a_model_decided_intent_counts_with_the_models_confidence(store):
    strict = AutomationPlanner(config({**RESET, "min_confidence": 0.8}))
    lenient = AutomationPlanner(config({**RESET, "min_confidence": 0.4}))
    t = ticket(store, "a")
    decided_by(store, t, "model:intent-3", 0.95, 0.5)  # decided twice: the latest decision counts
    assert announce(store, strict, Change(t, created=True)) == {}
    assert run(store, t) is None and queued(store) == []
    assert explain(store, strict, t) == (
        None,
        ["reset-password: the classification's confidence 0.50 is below 0.8"],
    )
    assert announce(store, lenient, Change(t, frozenset({"intent"}))) == {"automation": 1}
    assert run(store, t)["state"] == "queued" and stages(store) == [(t, "run", "reset-password")]


def test_an_intent_a_rule_a_person_or_the_source_set_counts_as_certain(store):
    strict = AutomationPlanner(config({**RESET, "min_confidence": 0.8}))
    by_rule, from_source, by_model = ticket(store, "a"), ticket(store, "b"), ticket(store, "c")
    decided_by(store, by_rule, "rule:password-words", 0.3)  # whatever an event says: a rule is sure
    decided_by(store, by_model, "model:intent-3")  # no decision event found: not sure at all
    with store.connect() as conn:
        rows = read_for_rules(conn, [by_rule, from_source, by_model])
        assert confidences(conn, rows) == {by_rule: 1.0, from_source: 1.0, by_model: 0.0}
    assert announce(store, strict, *(Change(t, created=True) for t in (by_rule, from_source, by_model))) == {
        "automation": 2
    }
    assert sorted(stages(store)) == [(by_rule, "run", "reset-password"), (from_source, "run", "reset-password")]
    assert run(store, by_model) is None


def test_without_an_intent_the_categorys_classification_counts(store):
    by_model = ticket(
        store, "a", intent=None, category="accounts", classified_by="model", classification_confidence=0.7
    )
    by_person = ticket(store, "b", intent=None, category="accounts", classified_by="human")
    from_source = ticket(store, "c", intent=None, category="accounts", classified_by="source")
    unclassified = ticket(store, "d", intent=None)
    with store.connect() as conn:
        rows = read_for_rules(conn, [by_model, by_person, from_source, unclassified])
        assert confidences(conn, rows) == {by_model: 0.7, by_person: 1.0, from_source: 1.0, unclassified: 0.0}
    accounts = rule("accounts", {"field": "category", "equals": "accounts"}, min_confidence=0.75)
    planner = AutomationPlanner(config(accounts))
    announce(store, planner, Change(by_model, created=True), Change(by_person, created=True))
    assert stages(store) == [(by_person, "run", "accounts")]


# --- open and recent tickets only -------------------------------------------------------------------------------


def test_a_resolved_or_old_ticket_gets_nothing_and_explain_says_why(store):
    planner = AutomationPlanner(config())
    resolved = ticket(store, "a", status=TicketStatus.RESOLVED)
    old = ticket(store, "b", opened_hours_ago=25)
    recent = ticket(store, "c", opened_hours_ago=23)
    changes = [Change(t, created=True) for t in (resolved, old, recent)]
    assert announce(store, planner, *changes) == {"automation": 1}
    assert [run(store, t) is not None for t in (resolved, old, recent)] == [False, False, True]
    assert stages(store) == [(recent, "run", "reset-password")]
    assert explain(store, planner, resolved) == (None, ["the ticket is resolved: only open tickets are automated"])
    assert explain(store, planner, old) == (None, ["the ticket was opened more than 24 h ago"])
    anytime = AutomationPlanner(config(max_ticket_age_hours=None))  # null: any open ticket
    assert announce(store, anytime, *changes) == {"automation": 1}
    assert stages(store) == [(recent, "run", "reset-password"), (old, "run", "reset-password")]
    assert run(store, resolved) is None


# --- parameters that cannot be rendered -----------------------------------------------------------------------


def test_parameters_that_fail_to_render_record_a_failed_run_and_start_nothing(store, caplog):
    missing = {**RESET, "run_deployment": {"name": "reset-password/ldap",
                                           "parameters": {"user": "{{ ticket.custom_fields.missing }}"}}}  # fmt: skip
    planner = AutomationPlanner(config(missing))
    t = ticket(store, "a", custom_fields={"present": "x"})
    with caplog.at_level("WARNING", logger="itsm.automation"):
        assert announce(store, planner, Change(t, created=True)) == {}
    failed = run(store, t)
    assert failed["state"] == "failed" and failed["parameters"] == {}
    assert failed["reason"] == "its parameters could not be rendered: 'dict object' has no attribute 'missing'"
    assert queued(store) == []
    ((old, new, actor, detail),) = automation_events(store, t)
    assert (old, new, actor) == (None, {"rule": "reset-password", "state": "failed"}, "automation:reset-password")
    assert detail == failed["reason"]  # the audit trail says why
    assert "T-000001: automation reset-password not started" in caplog.text
    assert announce(store, planner, Change(t, frozenset({"custom_fields"}))) == {}  # once, ever: not tried again
    assert run(store, t)["state"] == "failed"


def test_a_failed_and_a_started_run_in_one_batch(store):
    """A batch of new tickets where one rule's parameters fail for one ticket only."""
    needs = {**RESET, "run_deployment": {"name": "reset-password/ldap",
                                         "parameters": {"user": "{{ ticket.custom_fields.login }}"}}}  # fmt: skip
    ok, broken = ticket(store, "a", custom_fields={"login": "ann"}), ticket(store, "b")
    ok2 = ticket(store, "c", custom_fields={"login": "bob"})
    changes = [Change(t, created=True) for t in (ok, broken, ok2)]
    assert announce(store, AutomationPlanner(config(needs)), *changes) == {"automation": 2}
    assert [run(store, t)["state"] for t in (ok, broken, ok2)] == ["queued", "failed", "queued"]
    assert [run(store, t)["parameters"] for t in (ok, ok2)] == [{"user": "ann"}, {"user": "bob"}]
    assert [ticket_id for ticket_id, _ in queued(store)] == [ok, ok2]
    assert run(store, ok)["reason"] is None


# --- ask mode ---------------------------------------------------------------------------------------------------

ASK = {**RESET, "approval": "ask"}


def asked(store) -> tuple[AutomationPlanner, int]:
    """A ticket whose requester was asked (the ask stage delivered)."""
    planner = AutomationPlanner(config(ASK))
    t = ticket(store, "a")
    assert announce(store, planner, Change(t, created=True)) == {"automation": 1}
    assert run(store, t)["state"] == "asking"
    ((_, fields),) = queued(store)
    assert fields == {"stage": "ask", "rule": "reset-password", "ticket": "T-000001"}  # no key until it runs
    with store.transaction() as conn:
        assert advance(conn, t, "asking", "asked")
    return planner, t


def reply(store, planner, t, body: str, author: str = "Ann <ANN@example.org>", public: bool = True) -> dict:
    with store.transaction() as conn:
        (comment_id,) = add_comments(conn, [(t, Comment(body=body, author=author, public=public, origin="mail"))])
        return planner.announce(conn, [Change(t, frozenset(), (comment_id,), origin="mail")])


def test_ask_mode_asks_first_and_a_yes_from_the_requester_queues_the_run(store):
    planner, t = asked(store)
    assert reply(store, planner, t, "Yes\n\nThanks, Ann") == {"automation": 1}
    assert run(store, t)["state"] == "queued"
    assert stages(store) == [(t, "ask", "reset-password"), (t, "run", "reset-password")]
    assert queued(store)[1][1]["idempotency_key"].startswith("itsm-automation-")
    assert reply(store, planner, t, "yes") == {}  # said twice: started once
    assert len(queued(store)) == 2
    states = [new["state"] for _, new, _, _ in automation_events(store, t)]
    assert states == ["asking", "asked", "queued"]


@pytest.mark.parametrize("body", ["no", "No.", "> yes, please\n> yes\nno\n", "\n  NEIN!\n"])
def test_a_no_from_the_requester_declines(store, body):
    planner, t = asked(store)
    assert reply(store, planner, t, body) == {}
    declined = run(store, t)
    assert declined["state"] == "declined" and declined["reason"] == "the requester declined"
    assert declined["finished_at"] is not None
    assert stages(store) == [(t, "ask", "reset-password")]
    assert reply(store, planner, t, "yes") == {}  # too late: declined stays declined
    assert run(store, t)["state"] == "declined"


@pytest.mark.parametrize(
    ("body", "author", "public"),
    [
        ("yes", "Bob <bob@example.org>", True),  # someone else
        ("yes", "agent@example.org", True),
        ("yes", "Ann <ann@example.org>", False),  # private
        ("maybe later", "ann@example.org", True),  # neither word
        ("yes please do it", "ann@example.org", True),
        ("> yes", "ann@example.org", True),  # only a quote
    ],
)
def test_other_replies_leave_the_question_open(store, body, author, public):
    planner, t = asked(store)
    assert reply(store, planner, t, body, author, public) == {}
    assert run(store, t)["state"] == "asked"
    assert stages(store) == [(t, "ask", "reset-password")]
    assert reply(store, planner, t, "ok") == {"automation": 1}  # still answerable
    assert run(store, t)["state"] == "queued"


def test_a_reply_before_the_question_was_sent_counts_for_nothing(store):
    planner = AutomationPlanner(config(ASK))
    t = ticket(store, "a")
    announce(store, planner, Change(t, created=True))
    assert reply(store, planner, t, "yes") == {}
    assert run(store, t)["state"] == "asking"
    assert stages(store) == [(t, "ask", "reset-password")]


# --- advance ----------------------------------------------------------------------------------------------------


def test_advance_from_a_wrong_state_writes_nothing(store):
    t, without = ticket(store, "a"), ticket(store, "b", intent=None)
    announce(store, AutomationPlanner(config()), Change(t, created=True), Change(without, created=True))
    before = run(store, t)
    with store.transaction() as conn:
        events = conn.execute(select(func.count()).select_from(audit_events)).scalar_one()
        assert advance(conn, t, "asked", "queued") is False
        assert advance(conn, t, ("asking", "started"), "failed", reason="x") is False
        assert advance(conn, without, "queued", "started") is False  # no run at all
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_events)).scalar_one() == events
    assert run(store, t) == before
    with store.transaction() as conn:
        assert advance(conn, t, ("queued", "started"), "started", flow_run_id="f-1", started_at=utcnow()) is True
        assert advance(conn, t, "queued", "started") is False  # the second process to see it
    moved = run(store, t)
    assert moved["state"] == "started" and moved["flow_run_id"] == "f-1"
    (_, (old, new, actor, _)) = automation_events(store, t)
    assert old == {"state": "queued"} and actor == "automation:reset-password"
    assert new["rule"] == "reset-password" and new["state"] == "started" and new["flow_run_id"] == "f-1"
    assert isinstance(new["started_at"], str)  # dates become ISO text in the JSON values
