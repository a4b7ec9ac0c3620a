"""`sla-check`: compute every live ticket's SLA clocks from its history, store them, fire warnings and escalations.

One `sla-page` task per batch of tickets (one transaction each: clocks, fired levels, escalation actions and the
outbox items for linked systems commit together). The run's artifact says what it computed and fired, and what
breaches next.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote
from sqlalchemy import select

from flows.runtime import build_propagator, build_rules, build_sla, load_hub_config
from itsm_core.config import HubConfig
from itsm_core.models import utcnow
from itsm_core.rules import Rules
from itsm_core.rules.sla import SlaRules
from itsm_core.store import Store
from itsm_core.store.tables import SlaClockRow
from itsm_core.store.tickets import format_ticket_id
from itsm_core.sync.sla_check import SlaReport, check_batch, open_ticket_ids

BATCH = 1000
#: Tickets closed this recently are checked once more, so their clocks are stored stopped.
CLOSED_WITHIN = timedelta(days=1)


@task(name="sla-page", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def sla_page(config: HubConfig, sla: SlaRules, rules: Rules, ids: list[int]) -> SlaReport:
    """One batch in one transaction. Safe to retry: firing is idempotent (one row per ticket, metric, level)."""
    store = Store(config.database_url.get_secret_value())
    try:
        with store.transaction() as conn:
            report, changes = check_batch(conn, sla, ids, rules=rules)
            if changes or report.fired:
                build_propagator(config).propagate(conn, changes, report.fired)
        return report
    finally:
        store.dispose()


@flow(name="sla-check")
def sla_check(config_path: str | None = None, recompute_all: bool = False) -> dict[str, Any]:
    """Check the clocks of every ticket not closed or cancelled (and those closed in the last day); with
    `recompute_all`, recompute every ticket's clocks from its history — after a policy or calendar change —
    firing nothing for tickets already resolved or closed."""
    logger = get_run_logger()
    config = load_hub_config(config_path)
    store = Store(config.database_url.get_secret_value())
    store.ensure_current()
    now = utcnow()
    report = SlaReport()
    try:
        sla = build_sla(config)
        if not sla.active:
            logger.info("no SLA policies or OLAs in the config (rules.sla): nothing to compute")
        else:
            rules = build_rules(config)  # compiled once: an escalation's new group may route to an agent
            with store.connect() as conn:
                ids = open_ticket_ids(conn, closed_since=now - CLOSED_WITHIN, everything=recompute_all)
            for page, start in enumerate(range(0, len(ids), BATCH), start=1):
                batch = ids[start : start + BATCH]
                report += sla_page.with_options(task_run_name=f"sla-page-{page}")(
                    config, quote(sla), quote(rules), batch
                )
                logger.info("sla page %d: %d tickets", page, len(batch))
        with store.connect() as conn:
            upcoming = due_within(conn, now, timedelta(hours=1))
    finally:
        store.dispose()
    create_markdown_artifact(
        key="sla-check", markdown=sla_markdown(report, upcoming), description="SLA clocks computed and levels fired"
    )
    fired = len(report.fired)
    if fired:
        logger.warning("%d SLA level(s) fired: see this run's artifact", fired)
    return {"tickets": report.tickets, "clocks": report.clocks, "fired": fired}


def due_within(conn: Any, now: Any, window: timedelta, limit: int = 50) -> list[dict[str, Any]]:
    """Running clocks due before now + window, soonest first (also those already past due)."""
    clocks = SlaClockRow.__table__
    query = (
        select(clocks)
        .where(
            clocks.c.state.in_(["running", "breached"]), clocks.c.due_at.is_not(None), clocks.c.due_at < now + window
        )
        .order_by(clocks.c.due_at)
        .limit(limit)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def sla_markdown(report: SlaReport, upcoming: list[dict[str, Any]]) -> str:
    states = ", ".join(f"**{n}** {state}" for state, n in sorted(report.clocks.items())) or "none"
    lines = ["# SLA check", "", f"{report.tickets} ticket(s) checked; clocks: {states}."]
    if report.fired:
        lines += ["", "## Fired", "", "| ticket | metric | level | actions |", "|---|---|---|---|"]
        for item in report.fired[:100]:
            actions = "; ".join(item["actions"]) or "-"
            lines.append(f"| {format_ticket_id(item['ticket_id'])} | {item['metric']} | {item['level']} | {actions} |")
    if upcoming:
        lines += [
            "",
            "## Due within the hour",
            "",
            "| ticket | metric | policy | due (UTC) | state |",
            "|---|---|---|---|---|",
        ]
        for clock in upcoming:
            due = clock["due_at"].strftime("%Y-%m-%d %H:%M")
            lines.append(
                f"| {format_ticket_id(clock['ticket_id'])} | {clock['metric']} | {clock['policy']} | {due} | "
                f"{clock['state']} |"
            )
    lines += ["", "`itsm sla explain T-…` shows how a ticket's clock was counted."]
    return "\n".join(lines)
