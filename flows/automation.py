"""Automation steps: ask the requester, start the Prefect deployment, bring each run's outcome back to its ticket.

Starting goes through the outbox (target ``automation``; `itsm_core/automation/plan.py` queued it with the
change that called for it). `start_runs` creates the flow run with `run_deployment` (timeout 0: it does not
wait) under an idempotency key the step carries, so a start retried after a crash — before the hub recorded it —
gets the flow run Prefect created the first time, never a second one. The flow run's id, name and the step's
sending are then written in one transaction.

`collect_outcomes` reads the flow runs the store says were started and not seen to end (one API call), and
writes each ended one's outcome through the normal store path, `change_ticket`: a comment, the status
(resolved on success) or the failure group, an audit event, and the news for every linked system. Nothing is
held in memory between cycles: a hub restarted between a start and its end collects the outcome all the same,
and two hubs collecting at once write it once (`advance` moves only a run still ``started``).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from prefect.exceptions import ObjectNotFound
from sqlalchemy import Connection, select

from flows.outbound import DeliveryReport
from flows.runtime import change_ticket
from itsm_core.automation.plan import AUTOMATION_TARGET
from itsm_core.automation.runs import actor_of, advance, run_of, started_runs
from itsm_core.automation.spec import AutomationRule
from itsm_core.config import HubConfig
from itsm_core.email.notify import EMAIL_TARGET, requester_mails
from itsm_core.errors import NotFound
from itsm_core.models import Comment, TicketStatus, utcnow
from itsm_core.store import Store
from itsm_core.store.comments import add_comments
from itsm_core.store.outbox import MAX_ATTEMPTS, claim_due, enqueue, mark_failed, mark_sent, release
from itsm_core.store.tables import MailMessageRow, TicketRow
from itsm_core.store.tickets import format_ticket_id, set_fields, set_statuses
from itsm_core.templating import render

log = logging.getLogger("itsm.automation")
tickets = TicketRow.__table__
mail_messages = MailMessageRow.__table__
#: Where a workflow that mails the requester itself records its Message-IDs (`mail_messages.source`).
WORKFLOW_MAIL = "automation"
#: Prefect state types of an ended flow run that did not complete.
UNSUCCESSFUL = {"FAILED", "CRASHED", "CANCELLED"}


def without_server() -> bool:
    """True when no Prefect server is configured (PREFECT_API_URL unset: `itsm run`'s temporary API), where no
    deployment exists and nothing a run would report survives the process: automation steps wait for a server."""
    from prefect.settings import get_current_settings

    return not get_current_settings().api.url


def start_runs(store: Store, config: HubConfig, limit: int = 50) -> tuple[DeliveryReport, list[dict[str, Any]]]:
    """Deliver up to `limit` due automation steps: ask the requester, or start the deployment. Returns the
    report and one line per step (for the run's artifact)."""
    report, lines = DeliveryReport(), []
    with store.transaction() as conn:
        rows = claim_due(conn, AUTOMATION_TARGET, limit)
    for position, row in enumerate(rows):
        fields = row["fields"]
        rule = config.automation.rule(fields["rule"])
        try:
            if rule is None:
                raise LookupError(f"the rule {fields['rule']} is no longer in the config (automation.rules)")
            line = _ask(store, config, row, rule) if fields["stage"] == "ask" else _start(store, config, row, rule)
        except LookupError as exc:  # for good: the step can never succeed; the ticket goes to an agent
            _give_up(store, config, row, rule, str(exc))
            report.refused += 1
            lines.append(
                {"ticket": fields["ticket"], "rule": fields["rule"], "step": fields["stage"], "outcome": str(exc)}
            )
            continue
        except Exception as exc:  # the Prefect API or the store unreachable: retried with backoff
            error = f"{type(exc).__name__}: {exc}"
            if row["attempts"] + 1 >= MAX_ATTEMPTS:  # the last try: the ticket goes to an agent, not into limbo
                _give_up(store, config, row, rule, f"not started after {MAX_ATTEMPTS} attempts: {error}")
                report.refused += 1
                continue
            with store.transaction() as conn:
                mark_failed(conn, row, error)
                release(conn, [later["id"] for later in rows[position + 1 :]])
            report.failed += 1
            log.warning("%s: automation %s not started: %s; retried later", fields["ticket"], fields["rule"], error)
            break
        report.sent += 1
        lines.append(line)
    return report, lines


def _ask(store: Store, config: HubConfig, row: dict[str, Any], rule: AutomationRule) -> dict[str, Any]:
    """Post the question on the ticket (linked systems get it as a comment) and mail it to a mail requester."""
    ticket_id = row["ticket_id"]

    def edit(conn: Connection, ticket_id: int) -> tuple[frozenset[str], tuple[int, ...]]:
        mark_sent(conn, [row["id"]])
        if not advance(conn, ticket_id, "asking", "asked"):
            return frozenset(), ()
        ticket = _ticket(conn, ticket_id)
        text = render(rule.ask_text, rule=rule, ticket=ticket, number=format_ticket_id(ticket_id)).strip()
        comment = Comment(body=text, author=actor_of(rule.name), public=True)
        if config.email.smtp is not None:
            enqueue(conn, EMAIL_TARGET, requester_mails(conn, [ticket_id], lambda _: "question", text=text))
        return frozenset(), tuple(add_comments(conn, [(ticket_id, comment)]))

    change_ticket(config, store, ticket_id, edit)
    return {"ticket": format_ticket_id(ticket_id), "rule": rule.name, "step": "ask", "outcome": "requester asked"}


def _start(store: Store, config: HubConfig, row: dict[str, Any], rule: AutomationRule) -> dict[str, Any]:
    from prefect.deployments import run_deployment

    ticket_id, number = row["ticket_id"], row["fields"]["ticket"]
    with store.connect() as conn:
        run = run_of(conn, ticket_id)
    if run is None or run["state"] != "queued":  # declined, or already started by an earlier try
        with store.transaction() as conn:
            mark_sent(conn, [row["id"]])
        return {
            "ticket": number,
            "rule": rule.name,
            "step": "run",
            "outcome": f"nothing to start ({run and run['state']})",
        }
    try:
        flow_run = run_deployment(
            run["deployment"],
            parameters=run["parameters"],
            timeout=0,
            flow_run_name=f"{number}-{rule.name}",
            tags=[number, "automation", f"rule:{rule.name}"],
            idempotency_key=row["fields"]["idempotency_key"],
            as_subflow=False,
        )
    except ObjectNotFound:
        raise LookupError(
            f"no deployment {run['deployment']} on the Prefect server: register it (`prefect deploy -n "
            f"{run['deployment'].partition('/')[2]}`) and start the ticket's workflow by hand, or fix "
            f"automation.rules[{rule.name}].run_deployment.name"
        ) from None
    with store.transaction() as conn:
        mark_sent(conn, [row["id"]])
        advance(conn, ticket_id, "queued", "started", flow_run_id=str(flow_run.id), flow_run_name=flow_run.name,
                started_at=utcnow())  # fmt: skip
    log.info("%s: %s started as flow run %s (%s)", number, run["deployment"], flow_run.name, flow_run.id)
    return {"ticket": number, "rule": rule.name, "step": "run", "outcome": f"started {flow_run.name} ({flow_run.id})"}


def _give_up(store: Store, config: HubConfig, row: dict[str, Any], rule: AutomationRule | None, reason: str) -> None:
    with store.transaction() as conn:
        mark_failed(conn, row, reason, final=True)
    log.warning("%s: automation %s failed: %s", row["fields"]["ticket"], row["fields"]["rule"], reason)
    if rule is not None:
        outcome = {"state": "FAILED", "message": reason, "id": None, "name": None}
        _write_outcome(store, config, row["ticket_id"], rule, outcome, expected=("asking", "queued"))


def collect_outcomes(store: Store, config: HubConfig) -> list[dict[str, Any]]:
    """Bring the outcome of every started run that has ended back to its ticket; one line per outcome."""
    with store.connect() as conn:
        waiting = started_runs(conn)
    if not waiting:
        return []
    flow_runs = _read_flow_runs([run["flow_run_id"] for run in waiting])
    lines = []
    for run in waiting:
        flow_run = flow_runs.get(run["flow_run_id"])
        if flow_run is None:
            outcome = {"state": "FAILED", "message": "the flow run is gone from the Prefect server (deleted?)"}
        elif flow_run["state"] == "COMPLETED" or flow_run["state"] in UNSUCCESSFUL:
            outcome = flow_run
        else:
            continue  # scheduled, pending, running, paused: not yet
        outcome = {"id": run["flow_run_id"], "name": run["flow_run_name"], **outcome}
        rule = config.automation.rule(run["rule"]) or AutomationRule(
            name=run["rule"], when={"all": []}, run_deployment={"name": run["deployment"]}
        )  # a rule removed from the config since the start: its outcome still lands, in the default words
        if _write_outcome(store, config, run["ticket_id"], rule, outcome, expected=("started",)):
            lines.append({"ticket": format_ticket_id(run["ticket_id"]), "rule": run["rule"],
                          "flow_run": run["flow_run_name"], "outcome": outcome["state"].lower(),
                          "message": outcome.get("message") or ""})  # fmt: skip
    return lines


def _read_flow_runs(ids: list[str]) -> dict[str, dict[str, Any]]:
    """The state (type and message) of these flow runs, in one call to the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(i) for i in ids])), limit=len(ids)
        )
    return {
        str(run.id): {
            "state": run.state_type.value if run.state_type else "",
            "message": run.state and run.state.message,
        }
        for run in found
    }


def _write_outcome(
    store: Store, config: HubConfig, ticket_id: int, rule: AutomationRule, outcome: dict[str, Any], *,
    expected: tuple[str, ...],
) -> bool:  # fmt: skip
    """The run's outcome on its ticket, through `change_ticket`: on success a public "Solution:" comment and the
    status resolved; otherwise a private comment with the reason for the agent, and the ticket back in the
    failure group's queue (nobody assigned). False when another process wrote it first."""
    succeeded = outcome["state"] == "COMPLETED"
    reason = (outcome.get("message") or outcome["state"].lower()).strip()
    written = []

    def edit(conn: Connection, ticket_id: int) -> tuple[frozenset[str], tuple[int, ...]]:
        state = "succeeded" if succeeded else "failed"
        if not advance(conn, ticket_id, expected, state, finished_at=utcnow(), reason=None if succeeded else reason):
            return frozenset(), ()
        written.append(state)
        ticket, actor = _ticket(conn, ticket_id), actor_of(rule.name)
        run = {"deployment": rule.run_deployment.name, "message": outcome.get("message") if succeeded else None,
               "reason": reason, "name": outcome.get("name"), "id": outcome.get("id")}  # fmt: skip
        values = {"rule": rule, "run": run, "ticket": ticket, "number": format_ticket_id(ticket_id)}
        if succeeded:
            body = "Solution:\n" + render(rule.success_text, **values).strip()
            comment_ids = add_comments(conn, [(ticket_id, Comment(body=body, author=actor, public=True))])
            resolved = set_statuses(conn, {ticket_id: TicketStatus.RESOLVED}, actor)
            return frozenset({"status"} if resolved else ()), tuple(comment_ids)
        body = render(rule.failure_text, **values).strip()
        comment_ids = add_comments(conn, [(ticket_id, Comment(body=body, author=actor, public=False))])
        back = {"assignee": None, **({"assignment_group": rule.failure_group} if rule.failure_group else {})}
        return frozenset(set_fields(conn, ticket_id, back, actor)), tuple(comment_ids)

    told = frozenset()
    if succeeded and outcome.get("id"):
        with store.connect() as conn:
            told = frozenset({EMAIL_TARGET}) if _workflow_mailed(conn, ticket_id) else frozenset()
    try:
        change_ticket(config, store, ticket_id, edit, told=told)
    except NotFound:  # the ticket was purged meanwhile; its run row went with it
        return False
    return bool(written)


def _workflow_mailed(conn: Connection, ticket_id: int) -> bool:
    """Whether the workflow told the requester itself (a mail recorded by `mail_requester_now`): then the hub's own
    "resolved" mail would be a second one for the same news."""
    run = run_of(conn, ticket_id)
    since: datetime | None = run and run["created_at"]
    if since is None:
        return False
    query = select(mail_messages.c.id).where(
        mail_messages.c.ticket_id == ticket_id,
        mail_messages.c.direction == "out",
        mail_messages.c.source == WORKFLOW_MAIL,
        mail_messages.c.at >= since,
    )
    return conn.execute(query.limit(1)).first() is not None


def _ticket(conn: Connection, ticket_id: int) -> dict[str, Any]:
    return dict(conn.execute(select(tickets).where(tickets.c.id == ticket_id)).mappings().one())
