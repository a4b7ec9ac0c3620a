"""`hub-cycle`: one full pass over every enabled source — the job ops schedule and watch in the Prefect UI."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.artifacts import cycle_rows
from flows.automation import collect_outcomes, without_server
from flows.push import push_outbox
from flows.runtime import build_propagator, build_rules, load_hub_config
from flows.sync import sync_source
from itsm_core.errors import CycleFailed, failure_text
from itsm_core.store import Store
from itsm_core.sync.decide import dispatch_waiting


@flow(name="hub-cycle")
def hub_cycle(config_path: str | None = None) -> dict[str, dict[str, int] | str]:
    """Sync every enabled source (one `sync-source` subflow each), give tickets waiting in a group's queue to
    agents now on duty, push the outbox, publish a summary table.

    A failing source does not stop the others; the cycle fails at the end if any source failed, so the
    failure is visible in the UI while the other sources' work is kept.
    """
    logger = get_run_logger()
    config = load_hub_config(config_path)
    results: dict[str, dict[str, int] | str] = {}
    for source in config.sources:
        if not source.enabled:
            logger.info("%s is disabled in the config; skipped", source.name)
            continue
        # Called for its value, not its state: Prefect may hand back a Completed state without its data (the
        # API's copy, after a retried state proposal), and a lost result must not fail a cycle that worked.
        try:
            results[source.name] = sync_source.with_options(flow_run_name=f"sync-{source.name}")(
                source.name, config_path
            )
        except Exception as exc:
            results[source.name] = failure_text(exc)
            logger.error("%s failed: %s", source.name, results[source.name])
    try:
        if assigned := dispatch_waiting_tickets(config_path):
            logger.info("%d waiting ticket(s) given to agents now on duty", assigned)
    except Exception as exc:
        results["dispatch-waiting"] = failure_text(exc)
        logger.error("dispatch-waiting failed: %s", results["dispatch-waiting"])
    if config.automation.rules and not without_server():
        try:
            if collected := collect_automation(config_path):
                logger.info("%d automation run(s) ended; their outcomes are on their tickets", collected)
        except Exception as exc:
            results["collect-automation"] = failure_text(exc)
            logger.error("collect-automation failed: %s", results["collect-automation"])
    try:
        push_outbox.with_options(flow_run_name="push-outbox")(config_path)
    except Exception as exc:
        results["push-outbox"] = failure_text(exc)
        logger.error("push-outbox failed: %s", results["push-outbox"])
    create_table_artifact(
        key="hub-cycle-summary",
        table=cycle_rows(results),
        description=(
            "Per source: records fetched, tickets created / updated / unchanged, records quarantined; "
            "configuration items in `cis` for the sources that read them"
        ),
    )
    failed = [name for name, outcome in results.items() if isinstance(outcome, str)]
    if failed:
        raise CycleFailed(results, failed)
    return results


@task(name="collect-automation", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def collect_automation(config_path: str | None) -> int:
    """The outcomes of automation runs that ended since the last cycle, on their tickets (before the push, so
    linked systems and requesters hear of them in this cycle)."""
    config = load_hub_config(config_path)
    store = Store(config.database_url.get_secret_value())
    try:
        lines = collect_outcomes(store, config)
    finally:
        store.dispose()
    if lines:
        create_table_artifact(
            key="automation-outcomes",
            table=lines,
            description="Automation runs that ended: succeeded (the ticket resolved with a comment) or failed "
            "(the ticket back to an agent, with the reason in a private comment)",
        )
    return len(lines)


@task(name="dispatch-waiting", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def dispatch_waiting_tickets(config_path: str | None) -> int:
    """Tickets routed while nobody in their group was on duty go to an agent who is now (one transaction; the
    assignments are queued for the linked systems with it). Safe to retry: an assigned ticket no longer waits."""
    config = load_hub_config(config_path)
    rules = build_rules(config)
    if not rules.config.groups:
        return 0
    store = Store(config.database_url.get_secret_value())
    try:
        with store.transaction() as conn:
            changes, assigned = dispatch_waiting(conn, rules)
            if changes:
                build_propagator(config).propagate(conn, changes)
        return assigned
    finally:
        store.dispose()
