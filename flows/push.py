"""`push-outbox`: drain the outbox, one target system at a time, one task per page of due changes.

Each target's rows are sent with retries inside the connector; a failure counts an attempt on the row and
schedules it again with backoff; after the retry budget the row becomes a dead letter (stage `push`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from connectors.alerts import send_alert
from connectors.base import SourceWriter
from connectors.registry import build_writer, push_targets
from flows.automation import start_runs, without_server
from flows.outbound import DeliveryReport, deliver_alerts, deliver_email, deliver_linked
from flows.runtime import load_hub_config
from itsm_core.alerts.plan import MAILTO, alert_target
from itsm_core.automation.plan import AUTOMATION_TARGET
from itsm_core.config import HubConfig
from itsm_core.email.notify import EMAIL_TARGET
from itsm_core.store import Store
from itsm_core.store.outbox import depth

PAGE = 200
#: Pages per target and run: a backlog larger than this is left for the next cycle, so one slow target
#: cannot hold the cycle for ever.
MAX_PAGES = 50


@task(name="push-email-page", cache_policy=NO_CACHE)
def push_email_page(store: Store, config: HubConfig) -> DeliveryReport:
    return deliver_email(store, config.email, limit=PAGE)


@task(name="push-linked-page", cache_policy=NO_CACHE)
def push_linked_page(store: Store, target: str, writer: SourceWriter) -> DeliveryReport:
    return deliver_linked(store, target, writer, limit=PAGE)


def _drain(push_page: Callable[[], DeliveryReport]) -> DeliveryReport:
    total = DeliveryReport()
    for _ in range(MAX_PAGES):
        page = push_page()
        total += page
        if page.handled < PAGE or page.failed:
            break
    return total


@task(name="push-alerts-page", cache_policy=NO_CACHE)
def push_alerts_page(store: Store, target: str, send: Callable[[dict[str, Any]], None]) -> DeliveryReport:
    return deliver_alerts(store, target, send, limit=PAGE)


def push_alerts(store: Store, config: HubConfig) -> dict[str, dict[str, int]]:
    """Each alert channel's due alerts (and mail to addresses SLA escalations notify)."""
    channels: dict[str, Any] = dict(config.alerts.channels)
    if config.email.smtp is not None:
        channels[MAILTO] = None
    results: dict[str, dict[str, int]] = {}
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        for name, channel in channels.items():
            target = alert_target(name)
            with store.connect() as conn:
                if not depth(conn, target):
                    continue

            def send(alert: dict[str, Any], name: str = name, channel: Any = channel) -> None:
                send_alert(name, channel, alert, client=client, smtp=config.email.smtp)

            total = _drain(lambda: push_alerts_page(store, target, send))  # noqa: B023 (called at once)
            results[target] = {"sent": total.sent, "retry_later": total.failed, "refused": total.refused}
    return results


@task(name="start-automation-page", cache_policy=NO_CACHE)
def start_automation_page(store: Store, config: HubConfig, lines: list[dict[str, Any]]) -> DeliveryReport:
    report, started = start_runs(store, config, limit=PAGE)
    lines += started
    return report


@flow(name="push-outbox")
def push_outbox(config_path: str | None = None) -> dict[str, dict[str, int]]:
    """Send what every target is due; returns per target how many were sent and how many wait for a retry."""
    logger = get_run_logger()
    config = load_hub_config(config_path)
    store = Store(config.database_url.get_secret_value())
    results: dict[str, dict[str, int]] = {}
    automation: list[dict[str, Any]] = []
    try:
        # First: asking a requester queues the question's mail, which then goes out in this same push.
        with store.connect() as conn:
            automation_due = depth(conn, AUTOMATION_TARGET)
        if automation_due and without_server():
            logger.warning(
                "%d automation step(s) wait: workflows run on a Prefect server and its workers; set PREFECT_API_URL "
                "(README, \"Operating it with Prefect\")", automation_due,
            )  # fmt: skip
        elif automation_due:
            total = _drain(lambda: start_automation_page(store, config, automation))
            results[AUTOMATION_TARGET] = {"sent": total.sent, "retry_later": total.failed, "refused": total.refused}
        if config.email.smtp is not None:
            total = _drain(lambda: push_email_page(store, config))
            results[EMAIL_TARGET] = {"sent": total.sent, "retry_later": total.failed, "refused": total.refused}
        for source in push_targets(config):
            writer = build_writer(source)
            try:
                total = _drain(lambda: push_linked_page(store, source.name, writer))  # noqa: B023 (called at once)
            finally:
                writer.close()
            results[source.name] = {"sent": total.sent, "retry_later": total.failed, "refused": total.refused}
        results.update(push_alerts(store, config))
        for target, counts in results.items():
            logger.info("%s: %d sent, %d to retry, %d refused", target, *counts.values())
    finally:
        store.dispose()
    create_table_artifact(
        key="push-outbox-summary",
        table=[{"target": target, **counts} for target, counts in results.items()],
        description="Per target system: changes sent, waiting for a retry, and refused (dead letters: "
        "`itsm deadletters list`; `itsm sync status` shows the outbox)",
    )
    if automation:
        create_table_artifact(
            key="automation-started",
            table=automation,
            description="Automation steps taken: requesters asked, workflows started (their flow runs carry the "
            "ticket's number as a tag), and steps that could not be taken (the ticket went to an agent)",
        )
    return results
