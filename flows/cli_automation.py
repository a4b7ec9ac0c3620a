"""`itsm automation …`: the automation rules, why a ticket got one (or none), and the runs so far."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from flows._cli_base import ConfigOption, JsonOption, _config, _fail, _print_json, _store, _when, out

automation_app = typer.Typer(
    help="Automation: rules that start a Prefect deployment (a workflow) for a ticket and put its outcome on it."
)


@automation_app.command("list")
def list_rules(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The automation rules, in the order they are tried: condition, confidence needed, approval, deployment."""
    import json

    hub = _config(config)
    rules = [
        {"name": r.name, "when": r.when.model_dump(mode="json", by_alias=True, exclude_none=True),
         "min_confidence": r.min_confidence, "approval": r.approval,
         "deployment": r.run_deployment.name, "parameters": r.run_deployment.parameters,
         "failure_group": r.failure_group}
        for r in hub.automation.rules
    ]  # fmt: skip
    if as_json:
        _print_json(rules)
        return
    if not rules:
        out.print('no automation rules (automation.rules in the config; README, "Automation")')
        return
    table = Table("rule", "when", "confidence ≥", "approval", "deployment", "parameters", "on failure")
    for r in rules:
        table.add_row(r["name"], json.dumps(r["when"]), f"{r['min_confidence']:g}", r["approval"], r["deployment"],
                      json.dumps(r["parameters"]), r["failure_group"] or "(its group)")  # fmt: skip
    out.print(table)


@automation_app.command("explain")
def explain(
    ticket: Annotated[str, typer.Argument(help="Ticket number, e.g. T-000001 or 1.")], config: ConfigOption = None
) -> None:
    """Which automation rule the ticket got, or why none matched: each rule tried, with its reason."""
    from itsm_core.automation.plan import AutomationPlanner, confidences
    from itsm_core.automation.runs import run_of
    from itsm_core.errors import NotFound
    from itsm_core.store.tickets import format_ticket_id, parse_ticket_id
    from itsm_core.sync.decide import read_for_rules

    hub = _config(config)
    try:
        ticket_id = parse_ticket_id(ticket)
    except NotFound as exc:
        _fail(str(exc), code=2)
    store = _store(config)
    with store.connect() as conn:
        rows = read_for_rules(conn, [ticket_id])
        if not rows:
            _fail(f"no ticket {format_ticket_id(ticket_id)}; `itsm tickets list` shows the numbers")
        run = run_of(conn, ticket_id)
        sure = confidences(conn, rows)[ticket_id]
    store.dispose()
    rule, reasons = AutomationPlanner(hub.automation).explain(rows[0], sure, run)
    number = format_ticket_id(ticket_id)
    out.print(
        f"{number}: intent {rows[0]['intent'] or '(none)'}, classification confidence {sure:.2f}", highlight=False
    )
    for reason in reasons:
        out.print(f"  - {reason}", highlight=False)
    if run is not None:
        out.print(
            f"automation: {automation_line(run)}" + (f": {run['reason']}" if run["reason"] else ""), highlight=False
        )
    elif rule is None:
        out.print("no automation for this ticket", highlight=False)


@automation_app.command("history")
def history(
    config: ConfigOption = None,
    state: Annotated[
        str | None, typer.Option(help="Only runs in this state: asked, queued, started, succeeded, failed, declined.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, latest first.", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Automations so far, latest first: ticket, rule, deployment, state, the Prefect flow run (its name in the
    UI; filter the runs by the ticket's number as a tag) and the reason of a failure."""
    from itsm_core.automation.runs import history as read_history
    from itsm_core.store.tables import AUTOMATION_STATES
    from itsm_core.store.tickets import format_ticket_id

    if state is not None and state not in AUTOMATION_STATES:
        _fail(f"--state {state!r}: one of {', '.join(AUTOMATION_STATES)}", code=2)
    _config(config)
    store = _store(config)
    with store.connect() as conn:
        runs = read_history(conn, limit, state)
    store.dispose()
    entries: list[dict[str, Any]] = [
        {"ticket": format_ticket_id(r["ticket_id"]), "rule": r["rule"], "deployment": r["deployment"],
         "state": r["state"], "parameters": r["parameters"], "flow_run_id": r["flow_run_id"],
         "flow_run_name": r["flow_run_name"], "reason": r["reason"], "created_at": r["created_at"],
         "started_at": r["started_at"], "finished_at": r["finished_at"]}
        for r in runs
    ]  # fmt: skip
    if as_json:
        _print_json(entries)
        return
    table = Table("ticket", "rule", "state", "flow run", "started", "finished", "reason")
    for e in entries:
        table.add_row(e["ticket"], e["rule"], e["state"], e["flow_run_name"] or "", _when(e["started_at"]),
                      _when(e["finished_at"]), e["reason"] or "")  # fmt: skip
    out.print(table if entries else "no automation yet")


def automation_line(run: dict[str, Any] | None) -> str:
    """A ticket's automation on one line: rule, deployment, state and flow run (`tickets show`, `explain`)."""
    if run is None:
        return "-"
    flow_run = f", flow run {run['flow_run_name']} ({run['flow_run_id']})" if run["flow_run_id"] else ""
    return f"{run['rule']} → {run['deployment']}: {run['state']}{flow_run}"
