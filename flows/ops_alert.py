"""`ops-alert`: tell ops that the hub itself is in trouble, through the alert channels of `alerts.operations`.

prefect.yaml's `ops-alert/on-trouble` deployment carries two automations (created by `prefect deploy`): a
`hub-cycle` that fails twice within 11 minutes (two in a row at its 5-minute schedule), and an
`itsm.source.lagging` event, which `sync-source` emits when a source's last success is older than
`alerts.operations.lag_minutes`. Each alert goes through the outbox like any other (retries, then a dead letter) and
is sent at once; the same reason and source are told at most once an hour (tests/ops/test_ops_automation.py proves
the automations on a real server).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.push import push_alerts
from flows.runtime import load_hub_config
from itsm_core.alerts.plan import alert_target
from itsm_core.models import utcnow
from itsm_core.store import Store
from itsm_core.store.outbox import enqueue_once

_IDS = uuid.UUID("0c9b1d52-63a4-4f0e-8a51-7d1e2f3a4b5c")


@flow(name="ops-alert")
def ops_alert(
    reason: str, source: str | None = None, event_id: str | None = None, config_path: str | None = None
) -> dict[str, Any]:
    """Send `reason` (and the `source` concerned) to the channels of `alerts.operations`; `event_id` (the
    triggering Prefect event) makes a repeat a no-op — without it, one alert per reason and source an hour."""
    logger = get_run_logger()
    config = load_hub_config(config_path)
    operations = config.alerts.operations
    if operations is None:
        logger.warning("no alerts.operations in the config: nobody to tell that %s", reason)
        return {"queued": 0}
    now = utcnow()
    key = f"ops|{reason}|{source}|{event_id or now.strftime('%Y-%m-%dT%H')}"
    subject = f"itsm-hub: {reason}" + (f" ({source})" if source else "")
    fields = {
        "event_id": str(uuid.uuid5(_IDS, key)), "event": "hub_trouble", "rule": "operations", "ticket": None,
        "subject": subject[:200], "text": _text(reason, source, now), "occurred_at": now.isoformat(),
        "detail": {"source": source or "", "prefect_event": event_id or ""},
    }  # fmt: skip
    store = Store(config.database_url.get_secret_value())
    try:
        with store.transaction() as conn:
            queued = sum(
                enqueue_once(conn, alert_target(ch), [(None, fields, f"{key}|{ch}")]) for ch in operations.channels
            )
        results = push_alerts(store, config) if queued else {}
    finally:
        store.dispose()
    logger.info("%s: %d alert(s) queued, %s", subject, queued, results or "nothing new to send")
    create_markdown_artifact(
        key="ops-alert",
        markdown=f"# {subject}\n\n{fields['text']}\n\nQueued for {', '.join(operations.channels)}: {queued} "
        f"(0: already told). Sent: {results or 'nothing new'}.",
        description="What ops were told about the hub itself",
    )
    return {"queued": queued, **{target: counts for target, counts in results.items()}}


def _text(reason: str, source: str | None, now: datetime) -> str:
    where = f"Source: {source}. `itsm sync status` shows its lag and last error.\n" if source else ""
    return f"{reason}\n{where}At {now:%Y-%m-%d %H:%M} UTC. The runs and their artifacts are in the Prefect UI."
