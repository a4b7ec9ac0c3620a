"""The SLA step on a real store: clocks stored from the audit trail, each level fired once across runs,
escalation actions written and pushed, recomputation after a policy change, closed tickets never paging."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from itsm_core.calendars import Calendar
from itsm_core.models import Ticket
from itsm_core.rules.sla import SlaConfig, SlaRules
from itsm_core.store.audit import audit_event
from itsm_core.store.tables import AuditEventRow, SlaClockRow, SlaEventRow, TicketRow
from itsm_core.store.tickets import TicketWrite, get_ticket, upsert_tickets
from itsm_core.sync.sla_check import check_batch, open_ticket_ids, replies

MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 in Paris
PARIS = {
    "paris": Calendar.model_validate({"timezone": "Europe/Paris", "hours": {"mon-fri": ["09:00-17:00"]}}).compile()
}


def sla(**section) -> SlaRules:
    section.setdefault(
        "policies",
        [
            {
                "name": "p1",
                "when": {"field": "priority", "lte": 1},
                "calendar": "paris",
                "targets": {"resolution": "2h"},
            },
            {"name": "standard", "calendar": "paris", "targets": {"resolution": "8h", "first_response": "1h"}},
        ],
    )
    return SlaRules(SlaConfig.model_validate(section), PARIS)


def ticket(store, n=1, priority=3, created=MONDAY):
    write = TicketWrite(str(n), Ticket(title=f"t{n}", source_type="webhook", priority=priority, created_at=created,
                                       requester="ann@example.org"), str(n), frozenset())  # fmt: skip
    with store.transaction() as conn:
        (result,) = upsert_tickets(conn, "hooks", "source:hooks", [write])
    return result.ticket_id


def change(store, tid, at, **fields):
    """A change at a chosen instant, with its audit events: what a person or a source did then."""
    with store.transaction() as conn:
        row = conn.execute(select(TicketRow.__table__).where(TicketRow.id == tid)).mappings().one()
        conn.execute(update(TicketRow.__table__).where(TicketRow.id == tid).values(**fields))
        events = [audit_event("ticket", tid, k, row[k], v, "user:ops", None, at) for k, v in fields.items()]
        conn.execute(insert(AuditEventRow.__table__), events)


def check(store, rules, now, ids=None, fire=True):
    with store.transaction() as conn:
        ids = ids or open_ticket_ids(conn)
        return check_batch(conn, rules, ids, now, fire=fire)


def clocks(store, tid):
    with store.connect() as conn:
        query = select(SlaClockRow.__table__).where(SlaClockRow.ticket_id == tid)
        return {row["metric"]: dict(row) for row in conn.execute(query).mappings()}


def fired(store):
    with store.connect() as conn:
        query = select(SlaEventRow.ticket_id, SlaEventRow.metric, SlaEventRow.level).order_by(SlaEventRow.id)
        return [tuple(row) for row in conn.execute(query)]


def test_clocks_are_stored_with_their_due_time(store):
    tid = ticket(store)
    check(store, sla(), MONDAY + timedelta(hours=2))
    stored = clocks(store, tid)
    assert stored["resolution"]["used_seconds"] == 7200 and stored["resolution"]["state"] == "running"
    assert stored["resolution"]["due_at"] == MONDAY + timedelta(hours=8)  # 17:00 Paris the same day
    assert stored["first_response"]["state"] == "breached"


def test_each_level_fires_once_however_often_the_check_runs(store):
    tid = ticket(store)
    rules = sla(escalations=[{"name": "lead", "metric": "resolution", "at": "-1h", "actions": [{"notify": "lead"}]}])
    check(store, rules, MONDAY + timedelta(hours=4))  # 50 % used
    assert fired(store) == [(tid, "resolution", "warn:50"), (tid, "first_response", "warn:50"),
                            (tid, "first_response", "warn:75"), (tid, "first_response", "warn:90"),
                            (tid, "first_response", "breach")]  # fmt: skip
    for minutes in (270, 330, 425, 425):
        check(store, rules, MONDAY + timedelta(minutes=minutes))
    levels = [level for t, metric, level in fired(store) if metric == "resolution"]
    assert levels == ["warn:50", "warn:75", "escalation:lead"]  # 7h05 used: within 1 h of due, not yet 90 %
    check(store, rules, MONDAY + timedelta(hours=9))  # 18:00 in Paris: exactly 8 h used, due, not breached
    check(store, rules, MONDAY + timedelta(days=1, minutes=30))  # Tuesday 09:30: 8h30 used
    levels = [level for t, metric, level in fired(store) if metric == "resolution"]
    assert levels == ["warn:50", "warn:75", "escalation:lead", "warn:90", "breach"]
    with store.connect() as conn:
        trail = [e for e in get_ticket(conn, tid)["audit"] if e["field"] == "sla:resolution"]
    assert [e["new_value"] for e in trail] == levels and trail[-1]["actor"] == "sla:check"


def test_escalation_actions_reassign_and_raise_priority_and_are_pushed(store):
    tid = ticket(store)
    rules = sla(escalations=[{"name": "late", "at": "1h", "actions": [{"reassign": "major"}, {"raise_priority": 2}]}])
    report, changes = check(store, rules, MONDAY + timedelta(days=1, hours=3))  # 8 h + 2 h used
    row = clocks(store, tid)
    assert row["resolution"]["policy"] == "standard"
    with store.connect() as conn:
        t = get_ticket(conn, tid)
    assert (t["assignment_group"], t["priority"]) == ("major", 1)
    assert t["decided_by"]["priority"] == "sla:escalation:late"
    assert [c.fields for c in changes] == [frozenset({"assignment_group", "assignee", "priority"})]
    escalation = next(item for item in report.fired if item["level"] == "escalation:late")
    assert escalation["actions"] == ["reassigned to major", "priority raised to 1"]
    # the next check sees P1: the P1 policy applies from now on, and nothing fires twice
    report, changes = check(store, rules, MONDAY + timedelta(days=1, hours=3, minutes=5))
    assert changes == [] and all(item["level"] != "escalation:late" for item in report.fired)
    assert clocks(store, tid)["resolution"]["policy"] == "p1"


def test_a_policy_change_and_a_recompute_correct_every_clock_without_paging(store):
    open_one, closed_one = ticket(store, 1), ticket(store, 2)
    change(store, closed_one, MONDAY + timedelta(hours=3), status="resolved")
    change(store, closed_one, MONDAY + timedelta(hours=4), status="closed")
    check(store, sla(), MONDAY + timedelta(hours=5), ids=[open_one, closed_one], fire=False)
    assert clocks(store, closed_one)["resolution"]["state"] == "met"
    strict = sla(policies=[{"name": "strict", "calendar": "paris", "targets": {"resolution": "2h"}}])
    check(store, strict, MONDAY + timedelta(hours=5), ids=[open_one, closed_one])
    assert clocks(store, closed_one)["resolution"]["state"] == "breached"
    assert clocks(store, closed_one)["resolution"]["breached_at"] == MONDAY + timedelta(hours=2)
    assert "first_response" not in clocks(store, open_one)  # the new policy has no such target: removed
    assert {t for t, _, _ in fired(store)} == {open_one}  # the closed ticket's breach paged nobody


def test_pending_pauses_and_a_reply_is_the_first_response(store):
    tid = ticket(store)
    change(store, tid, MONDAY + timedelta(hours=1), status="pending")
    change(store, tid, MONDAY + timedelta(hours=3), status="in_progress")
    check(store, sla(), MONDAY + timedelta(hours=4))
    stored = clocks(store, tid)
    assert stored["resolution"]["used_seconds"] == 2 * 3600
    assert (stored["first_response"]["state"], stored["first_response"]["used_seconds"]) == ("met", 3600)


def test_a_policy_may_match_the_class_of_a_linked_ci(store):
    from itsm_core.store.tables import ConfigurationItemRow, TicketCILinkRow

    on_server, plain = ticket(store, 1), ticket(store, 2)
    with store.transaction() as conn:
        (ci,) = conn.execute(
            insert(ConfigurationItemRow.__table__).returning(ConfigurationItemRow.id),
            [{"ci_class": "server", "name": "db01", "status": "active", "attributes": {},
              "created_at": MONDAY, "updated_at": MONDAY}],
        ).scalars()  # fmt: skip
        conn.execute(insert(TicketCILinkRow.__table__), [{"ticket_id": on_server, "ci_id": ci, "created_at": MONDAY}])
    servers = {
        "name": "servers",
        "when": {"field": "ci_classes", "contains": "server"},
        "targets": {"resolution": "1h"},
    }
    check(
        store, sla(policies=[servers, {"name": "rest", "targets": {"resolution": "1d"}}]), MONDAY + timedelta(hours=2)
    )
    assert clocks(store, on_server)["resolution"]["policy"] == "servers"
    assert clocks(store, plain)["resolution"]["policy"] == "rest"


def test_replies_from_the_desk_are_updates_the_requester_s_side_s_are_not(store):
    from itsm_core.store.tables import CommentRow, MailMessageRow, TicketWatcherRow

    tid = ticket(store)
    hour = timedelta(hours=1)
    with store.transaction() as conn:
        watcher = {"ticket_id": tid, "address": "Colleague@Example.org", "created_at": MONDAY}
        conn.execute(insert(TicketWatcherRow.__table__), [watcher])  # CC'd on the mail that opened the ticket
        said = [
            ("Ann Lee <ANN@example.org>", True, hour),  # the requester, as a mail's From names her
            ("colleague@example.org", True, hour),  # a watcher's "me too"
            ("Priya Nair <priya@example.org>", True, 1.5 * hour),  # someone else who wrote to the mailbox
            ("bob", False, 2 * hour),  # a private note
            ("bob", True, 3 * hour),  # the desk answers
        ]
        ids = (
            conn.execute(
                insert(CommentRow.__table__).returning(CommentRow.id, sort_by_parameter_order=True),
                [
                    {"ticket_id": tid, "body": "…", "author": a, "public": p, "created_at": MONDAY + t}
                    for a, p, t in said
                ],
            )
            .scalars()
            .all()
        )
        conn.execute(
            insert(MailMessageRow.__table__),
            [{"message_id": f"<{i}@example.org>", "direction": "in", "ticket_id": tid, "comment_id": comment_id,
              "address": "x", "source": "mailbox", "at": MONDAY} for i, comment_id in enumerate(ids[:3])],
        )  # fmt: skip
    rules = sla(
        policies=[{"name": "talk", "calendar": "paris", "targets": {"first_response": "4h", "next_update": "2h"}}]
    )
    check(store, rules, MONDAY + timedelta(hours=4))
    stored = clocks(store, tid)
    assert (stored["first_response"]["state"], stored["first_response"]["used_seconds"]) == ("met", 3 * 3600)
    # silent from 09:00 to 12:00 (the requester's side and a private note are no updates): over 2 h at 11:00
    assert stored["next_update"]["state"] == "breached"
    assert stored["next_update"]["breached_at"] == MONDAY + timedelta(hours=2)
    assert stored["next_update"]["used_seconds"] == 3600  # since bob's reply
    with store.connect() as conn:  # an agent who mails from their own address is the desk
        row = conn.execute(select(TicketRow.__table__).where(TicketRow.id == tid)).mappings().one()
        assert replies(conn, [dict(row)], agents=["priya@example.org"])[tid][0] == MONDAY + 1.5 * hour


def test_a_ticket_an_escalation_hands_to_a_group_gets_one_of_its_agents(store):
    from itsm_core.rules import Rules, RulesConfig

    tid = ticket(store)
    routing = Rules(RulesConfig.model_validate({"groups": {"major": {"agents": [{"name": "max"}, {"name": "mia"}]}}}))
    rules = sla(escalations=[{"name": "late", "at": "0m", "actions": [{"reassign": "major"}]}])
    with store.transaction() as conn:
        _, changes = check_batch(conn, rules, [tid], MONDAY + timedelta(days=1, hours=2), rules=routing)
    with store.connect() as conn:
        t = get_ticket(conn, tid)
    assert (t["assignment_group"], t["assignee"]) == ("major", "max")
    assert {name for change in changes for name in change.fields} >= {"assignment_group", "assignee"}
    picked = [e for e in t["audit"] if e["field"] == "assignee" and e["new_value"] == "max"]
    assert picked[0]["actor"] == "rules:group-major" and picked[0]["detail"]["chosen"] == "max"


def test_an_upstream_change_counts_from_when_it_happened_there_not_when_the_hub_polled(store):
    opened = datetime.now(UTC) - timedelta(hours=3)

    def land(external_id, at, **values):
        """What GLPI reports: `at` is its date_mod, when a person last changed the ticket there."""
        t = Ticket(title="VPN", source_type="glpi", created_at=opened, updated_at=at, **values)
        write = TicketWrite(external_id, t, f"{at}{values}", frozenset({"status", "updated_at"}))
        with store.transaction() as conn:
            (result,) = upsert_tickets(conn, "glpi", "source:glpi", [write])
        return result.ticket_id

    def status_events(tid):
        with store.connect() as conn:
            return [e["at"] for e in get_ticket(conn, tid)["audit"] if e["field"] == "status"]

    tid = land("Ticket/1", opened)
    resolved_there = opened + timedelta(hours=1)  # resolved in GLPI two hours before the hub read it
    land("Ticket/1", resolved_there, status="resolved")
    assert status_events(tid)[-1] == resolved_there
    with store.connect() as conn:
        assert get_ticket(conn, tid)["resolved_at"] == resolved_there
    check(store, sla(policies=[{"name": "24x7", "targets": {"resolution": "90m"}}]), datetime.now(UTC))
    assert clocks(store, tid)["resolution"]["stopped_at"] == resolved_there
    assert clocks(store, tid)["resolution"]["state"] == "met"  # 60 of 90 minutes; the poll's delay is not counted

    # in order whatever the source says: not in the future (its clock ahead), not before what the hub recorded
    land("Ticket/1", datetime.now(UTC) + timedelta(hours=2), status="closed")
    assert resolved_there < status_events(tid)[-1] <= datetime.now(UTC)
    other = land("Ticket/2", opened)
    hub_changed = datetime.now(UTC) - timedelta(minutes=10)
    change(store, other, hub_changed, status="in_progress", updated_at=hub_changed)
    land("Ticket/2", opened + timedelta(minutes=5), status="resolved")  # dated before the hub's change
    assert status_events(other)[-2:] == [hub_changed, hub_changed]
