"""From ticket changes to automation steps queued in the outbox, in the change's transaction.

A ticket gets at most one automation, ever: the first rule (in config order) whose condition holds when the
ticket is open, recent (`max_ticket_age_hours`) and classified confidently enough (`min_confidence`; a rule's or
a person's classification counts as 1). Its parameters are rendered then, and the run is recorded
(`automation_runs`) with one outbox item for target ``automation``:

- ``{"stage": "run"}``: start the deployment (`approval: auto`, or once the requester confirmed);
- ``{"stage": "ask"}``: ask the requester first (`approval: ask`); their reply — a public comment whose author
  is the requester and whose first line is one of `confirm_words` or `decline_words` — queues the run or
  declines it.

`flows/automation.py` delivers both stages and brings each run's outcome back to its ticket.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import Connection, select

from itsm_core.automation.runs import advance, create_runs, runs_of
from itsm_core.automation.spec import AutomationConfig, AutomationRule
from itsm_core.models import OPEN_STATUSES, ClassifiedBy, utcnow
from itsm_core.rules.conditions import compile_condition, record_view
from itsm_core.store.bulk import one_of
from itsm_core.store.comments import author_address
from itsm_core.store.outbox import enqueue_once
from itsm_core.store.tables import AuditEventRow, CommentRow, TicketRow
from itsm_core.store.tickets import format_ticket_id
from itsm_core.sync.decide import read_for_rules
from itsm_core.sync.propagate import Change
from itsm_core.templating import render

log = logging.getLogger("itsm.automation")
comments = CommentRow.__table__
audit_events = AuditEventRow.__table__
tickets = TicketRow.__table__

#: The outbox target of automation steps.
AUTOMATION_TARGET = "automation"
#: Statuses in which a ticket may still be automated.
OPEN = {status.value for status in OPEN_STATUSES}
#: Classifications as sure as they get: a rule's or a person's (and, for an intent, the source's).
CERTAIN = {ClassifiedBy.RULE.value, ClassifiedBy.HUMAN.value}


def confidences(conn: Connection, tickets: Sequence[dict[str, Any]]) -> dict[int, float]:
    """How sure each ticket's classification is. Its intent's, when it has one: 1 when a rule, a person or the
    source set it, the model's probability (from the decision's audit event) when a model did. Without an intent,
    its category's: 1 for a rule's or a person's, the model's probability for a model's; 0 when unclassified."""
    found: dict[int, float] = {}
    by_model = []
    for ticket in tickets:
        intent_by = (ticket.get("decided_by") or {}).get("intent") or ""
        if ticket.get("intent") is not None:
            if intent_by.startswith("model:"):
                by_model.append(ticket["id"])
            found[ticket["id"]] = 0.0 if intent_by.startswith("model:") else 1.0
        elif ticket.get("classified_by") == ClassifiedBy.MODEL.value:
            found[ticket["id"]] = float(ticket.get("classification_confidence") or 0.0)
        else:
            found[ticket["id"]] = 1.0 if ticket.get("classified_by") in CERTAIN | {ClassifiedBy.SOURCE.value} else 0.0
    if by_model:
        query = (
            select(audit_events.c.entity_id, audit_events.c.detail)
            .where(
                audit_events.c.entity == "ticket",
                audit_events.c.field == "intent",
                audit_events.c.actor.like("model:%"),
                one_of(conn, audit_events.c.entity_id, by_model),
            )
            .order_by(audit_events.c.id)
        )
        for ticket_id, detail in conn.execute(query):  # the latest decision wins
            found[ticket_id] = float((detail or {}).get("confidence") or 0.0)
    return found


def render_parameters(value: Any, ticket: dict[str, Any]) -> Any:
    """Every string of `value` (at any depth) rendered as jinja2 over `ticket` and `number`."""
    if isinstance(value, str):
        return render(value, ticket=ticket, number=format_ticket_id(ticket["id"]))
    if isinstance(value, dict):
        return {key: render_parameters(item, ticket) for key, item in value.items()}
    if isinstance(value, list):
        return [render_parameters(item, ticket) for item in value]
    return value


def step_item(ticket_id: int, stage: str, rule: str) -> tuple[int, dict[str, Any], str]:
    """The outbox item of one stage of a ticket's automation; its key makes it queued once, ever. A run's
    `idempotency_key` (unique to this hub and ticket) makes Prefect create its flow run once, however often
    the start is retried."""
    fields = {"stage": stage, "rule": rule, "ticket": format_ticket_id(ticket_id)}
    if stage == "run":
        fields["idempotency_key"] = f"itsm-automation-{uuid.uuid4()}"
    return ticket_id, fields, f"{ticket_id}|{stage}"


class AutomationPlanner:
    """The automation rules of one run, compiled once; `announce` queues what changes call for."""

    def __init__(self, config: AutomationConfig) -> None:
        self.config = config
        self.conditions = {rule.name: compile_condition(rule.when) for rule in config.rules}
        self.confirm = {word.casefold() for word in config.confirm_words}
        self.decline = {word.casefold() for word in config.decline_words}

    def explain(
        self, ticket: dict[str, Any], confidence: float, run: dict[str, Any] | None = None
    ) -> tuple[AutomationRule | None, list[str]]:
        """The rule the ticket gets (None if none) and, per rule tried, why it did or did not match."""
        if run is not None:
            return self.config.rule(run["rule"]), [f"it already has its automation ({run['rule']}, {run['state']})"]
        reasons = []
        if ticket["status"] not in OPEN:
            return None, [f"the ticket is {ticket['status']}: only open tickets are automated"]
        since = self._opened_since()
        if since is not None and ticket["created_at"] is not None and ticket["created_at"] < since:
            return None, [f"the ticket was opened more than {self.config.max_ticket_age_hours:g} h ago"]
        view = record_view(ticket)
        for rule in self.config.rules:
            if not self.conditions[rule.name](view):
                reasons.append(f"{rule.name}: its condition does not hold")
            elif confidence < rule.min_confidence:
                reasons.append(
                    f"{rule.name}: the classification's confidence {confidence:.2f} is below {rule.min_confidence:g}"
                )
            else:
                reasons.append(f"{rule.name}: matches ({rule.approval})")
                return rule, reasons
        return None, reasons or ["no automation rules in the config"]

    def announce(self, conn: Connection, changes: Sequence[Change]) -> dict[str, int]:
        if not self.config.rules or not changes:
            return {}
        ids = {change.ticket_id for change in changes}
        known = runs_of(conn, ids)
        queued = self._answers(
            conn, [c for c in changes if c.comment_ids and known.get(c.ticket_id, {}).get("state") == "asked"], known
        )
        fresh = ids - set(known)
        if fresh:
            queued += self._plan(conn, read_for_rules(conn, fresh))
        return {AUTOMATION_TARGET: queued} if queued else {}

    def announce_sla(self, conn: Connection, fired: Sequence[dict[str, Any]]) -> dict[str, int]:
        return {}

    def _plan(self, conn: Connection, tickets: list[dict[str, Any]]) -> int:
        planned, steps = [], []
        sure = confidences(conn, tickets)
        for ticket in tickets:
            rule, _ = self.explain(ticket, sure[ticket["id"]])
            if rule is None:
                continue
            stage = "ask" if rule.approval == "ask" else "run"
            item = {"ticket_id": ticket["id"], "rule": rule.name, "deployment": rule.run_deployment.name}
            try:
                parameters = render_parameters(rule.run_deployment.parameters, ticket)
            except TemplateError as exc:
                reason = f"its parameters could not be rendered: {exc}"
                log.warning("%s: automation %s not started: %s", format_ticket_id(ticket["id"]), rule.name, reason)
                planned.append({**item, "parameters": {}, "state": "failed", "reason": reason, "detail": reason})
                continue
            planned.append({**item, "parameters": parameters, "state": "asking" if stage == "ask" else "queued"})
            steps.append(step_item(ticket["id"], stage, rule.name))
        new = create_runs(conn, planned)
        return enqueue_once(conn, AUTOMATION_TARGET, [step for step in steps if step[0] in new])

    def _answers(self, conn: Connection, changes: list[Change], runs: dict[int, dict[str, Any]]) -> int:
        """The requester's replies to the question: the first confirming or declining one decides."""
        if not changes:
            return 0
        wanted = {comment_id for change in changes for comment_id in change.comment_ids}
        query = select(comments.c.ticket_id, comments.c.author, comments.c.body, comments.c.public).where(
            comments.c.id.in_(wanted)
        )
        replies = conn.execute(query.order_by(comments.c.id)).all()
        asked = select(tickets.c.id, tickets.c.requester).where(tickets.c.id.in_({c.ticket_id for c in changes}))
        requesters = {ticket_id: author_address(requester) for ticket_id, requester in conn.execute(asked)}
        steps = []
        for ticket_id, author, body, public in replies:
            if not public or not requesters.get(ticket_id) or author_address(author) != requesters[ticket_id]:
                continue
            answer = self._answer(body)
            if answer == "yes" and advance(conn, ticket_id, "asked", "queued"):
                steps.append(step_item(ticket_id, "run", runs[ticket_id]["rule"]))
            elif answer == "no":
                advance(conn, ticket_id, "asked", "declined", reason="the requester declined", finished_at=utcnow())
        return enqueue_once(conn, AUTOMATION_TARGET, steps)

    def _answer(self, body: str) -> str | None:
        """ "yes", "no" or None: the reply's first line that is not quoted, as one word."""
        for line in body.splitlines():
            if not line.strip() or line.lstrip().startswith(">"):
                continue
            word = line.strip().strip(".!,;:").casefold()
            if word in self.confirm:
                return "yes"
            if word in self.decline:
                return "no"
            return None
        return None

    def _opened_since(self) -> Any:
        hours = self.config.max_ticket_age_hours
        return utcnow() - timedelta(hours=hours) if hours is not None else None
