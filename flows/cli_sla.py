"""`itsm sla …`: check the clocks, recompute them from history, list what is due, explain one ticket's clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from flows._cli_base import ConfigOption, JsonOption, _config, _print_json, _store, _when, err, out
from flows.cli_rules import parse_age
from itsm_core.errors import failure_text

sla_app = typer.Typer(
    help="SLA clocks: business-hours targets per policy, computed from each ticket's history.", no_args_is_help=True
)


def _run_check(config: str | None, recompute_all: bool) -> None:
    _config(config)  # fail fast, with exit 2, before Prefect starts
    from flows.sla import sla_check

    try:
        result = sla_check(config_path=config, recompute_all=recompute_all)
    except Exception as exc:
        err.print(f"error: {failure_text(exc)}", markup=False)
        raise typer.Exit(1) from None
    clocks = ", ".join(f"{n} {state}" for state, n in sorted(result["clocks"].items())) or "none"
    out.print(f"{result['tickets']} tickets checked; clocks: {clocks}; {result['fired']} level(s) fired", markup=False)


@sla_app.command("check")
def sla_check_command(config: ConfigOption = None) -> None:
    """Compute the clocks of every open ticket and fire the warnings and escalations they reached (the
    `sla-check` flow, which the scheduled deployment runs every 5 minutes)."""
    _run_check(config, recompute_all=False)


@sla_app.command("recompute")
def sla_recompute(config: ConfigOption = None) -> None:
    """Recompute EVERY ticket's clocks from its history, e.g. after changing a policy or a calendar. Tickets
    already resolved or closed get corrected clocks and fire nothing."""
    _run_check(config, recompute_all=True)


@sla_app.command("due")
def sla_due(
    within: Annotated[str, typer.Option(help="How far ahead: 1h, 30m, 2d.")] = "1h",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Clocks that breach within the window (and those already breached and still open), soonest first, as of
    the last check."""
    from flows.sla import due_within
    from itsm_core.models import utcnow
    from itsm_core.store.tickets import format_ticket_id

    store = _store(config)
    with store.connect() as conn:
        rows = due_within(conn, utcnow(), parse_age(within), limit=500)
    if as_json:
        _print_json([{"number": format_ticket_id(r["ticket_id"]), **r} for r in rows])
        return
    if not rows:
        out.print(f"nothing due within {within} (as of the last `itsm sla check`)")
        return
    table = Table("ticket", "metric", "policy", "due", "used / target", "state")
    for r in rows:
        used = f"{_hours(r['used_seconds'])} / {_hours(r['target_seconds'])}"
        table.add_row(format_ticket_id(r["ticket_id"]), r["metric"], r["policy"], _when(r["due_at"]), used, r["state"])
    out.print(table)


def _hours(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}"


@sla_app.command("explain")
def sla_explain(
    ticket: Annotated[str, typer.Argument(help="Ticket number, e.g. T-000001 or 1.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """How a ticket's clocks were counted: the policy and calendar, each stretch of its life (counted, paused,
    outside business hours), the target, the due time — recomputed now from its history."""
    from flows.runtime import build_sla
    from itsm_core.models import utcnow
    from itsm_core.store.tickets import format_ticket_id, get_ticket, parse_ticket_id
    from itsm_core.sync.sla_check import histories, replies

    hub = _config(config)
    sla = build_sla(hub)
    store = _store(config)
    ticket_id = parse_ticket_id(ticket)
    now = utcnow()
    with store.connect() as conn:
        row = get_ticket(conn, ticket_id)
        changes = histories(conn, [ticket_id]).get(ticket_id, [])
        updates = replies(conn, [row], hub.rules.agent_names()).get(ticket_id, [])
    clocks = sla.compute(row, changes, now, updates[0] if updates else None, updates) if sla.active else []
    if as_json:
        _print_json({"number": format_ticket_id(ticket_id), "clocks": [_clock_json(c) for c in clocks]})
        return
    out.print(f"[bold]{format_ticket_id(ticket_id)}[/bold]  {row['title']}", markup=True, highlight=False)
    if not clocks:
        out.print(
            "no SLA clock: no policy of rules.sla matches this ticket, none is configured, or the ticket came into "
            "the hub already resolved or closed (its life before is unknown)"
        )
        return
    for clock in clocks:
        calendar = sla.calendar(None if clock.calendar == "24x7" else clock.calendar)
        out.print(
            f"\n{clock.metric}: policy '{clock.policy}', calendar {clock.calendar}; target {_hours(clock.target)}, "
            f"used {_hours(clock.used)} ({clock.percent:.0f} %) → {clock.state}",
            markup=False,
            highlight=False,
        )
        if clock.due_at:
            out.print(f"  due {_when(clock.due_at)}", markup=False)
        if clock.breached_at:
            out.print(f"  target reached at {_when(clock.breached_at)}", markup=False)
        if clock.stopped_at:
            out.print(f"  stopped at {_when(clock.stopped_at)}{_stopped_by(clock, row)}", markup=False)
        for piece in clock.pieces:
            span = piece.end - piece.start
            why = _piece_words(piece, span.total_seconds(), calendar)
            out.print(
                f"  {_when(piece.start)} → {_when(piece.end)}  {piece.status:<12} {piece.policy or '-':<14} {why}",
                markup=False,
                highlight=False,
            )


def _stopped_by(clock: Any, ticket: dict[str, Any]) -> str:
    from itsm_core.rules.sla import DESK_REPLY

    if not clock.stopped_by:
        return ""
    if clock.stopped_by == DESK_REPLY:
        authors = [c["author"] for c in ticket.get("comments") or [] if c["created_at"] == clock.stopped_at]
        return f" by {DESK_REPLY}" + (f" (from {authors[0]})" if authors and authors[0] else "")
    return f" by {clock.stopped_by}"


def _piece_words(piece: Any, elapsed: float, calendar: Any) -> str:
    if piece.paused:
        return f"paused ({piece.status}): {_hours(elapsed)} not counted"
    outside = elapsed - piece.counted
    words = f"counted {_hours(piece.counted)}"
    if outside > 0:
        words += f", {_hours(outside)} outside business hours"
        first, last = piece.start.date(), piece.end.date()
        days = [first + timedelta(days=n) for n in range(min((last - first).days + 1, 31))]
        reasons = sorted({reason for day in days if (reason := calendar.closed_reason(day))})
        if reasons:
            words += f" ({', '.join(reasons)})"
    return words


def _clock_json(clock: Any) -> dict[str, Any]:
    return {
        "metric": clock.metric,
        "policy": clock.policy,
        "calendar": clock.calendar,
        "target_seconds": clock.target,
        "used_seconds": clock.used,
        "state": clock.state,
        "due_at": clock.due_at,
        "breached_at": clock.breached_at,
        "stopped_at": clock.stopped_at,
        "stopped_by": clock.stopped_by,
        "pieces": [
            {
                "start": p.start,
                "end": p.end,
                "status": p.status,
                "policy": p.policy,
                "counted": p.counted,
                "paused": p.paused,
            }
            for p in clock.pieces
        ],
    }
