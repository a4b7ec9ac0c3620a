"""`push-outbox`: drain the outbox, one target system at a time, one task per page of due changes.

Each target's rows are sent with retries inside the connector; a failure counts an attempt on the row and
schedules it again with backoff; after the retry budget the row becomes a dead letter (stage `push`).
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.outbound import DeliveryReport, deliver_email
from flows.runtime import load_hub_config
from itsm_core.config import HubConfig
from itsm_core.email.notify import EMAIL_TARGET
from itsm_core.store import Store

PAGE = 200
#: Pages per target and run: a backlog larger than this is left for the next cycle, so one slow target
#: cannot hold the cycle for ever.
MAX_PAGES = 50


@task(name="push-email-page", cache_policy=NO_CACHE)
def push_email_page(store: Store, config: HubConfig) -> DeliveryReport:
    return deliver_email(store, config.email, limit=PAGE)


@flow(name="push-outbox")
def push_outbox(config_path: str | None = None) -> dict[str, dict[str, int]]:
    """Send what every target is due; returns per target how many were sent and how many wait for a retry."""
    logger = get_run_logger()
    config = load_hub_config(config_path)
    store = Store(config.database_url.get_secret_value())
    results: dict[str, dict[str, int]] = {}
    try:
        if config.email.smtp is not None:
            total = DeliveryReport()
            for _ in range(MAX_PAGES):
                page = push_email_page(store, config)
                total.sent, total.failed = total.sent + page.sent, total.failed + page.failed
                if page.sent + page.failed < PAGE:
                    break
            results[EMAIL_TARGET] = {"sent": total.sent, "retry_later": total.failed}
            logger.info("email: %d sent, %d to retry", total.sent, total.failed)
    finally:
        store.dispose()
    create_table_artifact(
        key="push-outbox-summary",
        table=[{"target": target, **counts} for target, counts in results.items()],
        description="Per target system: changes sent, and those waiting for a retry (see `itsm sync status`)",
    )
    return results
