"""The hub's own trouble reaches ops: `ops-alert` sends through `alerts.operations` once per triggering event, and
`sync-source` emits `itsm.source.lagging` for a source that failed and has not synced for too long."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.webhook.auth import check
from connectors.webhook.config import SignedAuth
from flows.ops_alert import ops_alert
from flows.sync import sync_source
from itsm_core.store import Store
from tests.support.http_sink import HttpSink

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]


def hub(tmp_path: Path, url: str, operations: bool = True) -> str:
    config = tmp_path / "itsm.yaml"
    config.write_text(
        f"database_url: sqlite:///{tmp_path / 'store.db'}\n"
        "sources:\n  - {name: drop, kind: maildir, path: no-such-folder}\n"
        "alerts:\n"
        f"  channels: {{ops-hook: {{type: webhook, url: '{url}/ops', secret: ops-secret}}}}\n"
        + ("  operations: {channels: [ops-hook], lag_minutes: 30}\n" if operations else "")
    )
    Store(f"sqlite:///{tmp_path / 'store.db'}").upgrade()
    return str(config)


def test_ops_alert_tells_the_operations_channels_once_per_event(tmp_path: Path):
    with HttpSink() as sink:
        config = hub(tmp_path, sink.url)
        first = ops_alert("hub-cycle failed twice in a row", event_id="ev-1", config_path=config)
        again = ops_alert("hub-cycle failed twice in a row", event_id="ev-1", config_path=config)
        other = ops_alert("a source has not synced for too long", source="drop", config_path=config)
    assert (first["queued"], again["queued"], other["queued"]) == (1, 0, 1)
    assert first["alert:ops-hook"]["sent"] == 1
    for request in sink.requests:
        check(SignedAuth(scheme="hmac", secret="ops-secret"), request.headers, request.body)
    subjects = [json.loads(r.body)["subject"] for r in sink.requests]
    assert subjects == [
        "itsm-hub: hub-cycle failed twice in a row",
        "itsm-hub: a source has not synced for too long (drop)",
    ]


def test_without_operations_nobody_is_told(tmp_path: Path):
    with HttpSink() as sink:
        result = ops_alert("hub-cycle failed twice in a row", config_path=hub(tmp_path, sink.url, operations=False))
    assert result == {"queued": 0} and sink.requests == []


@pytest.mark.parametrize("operations", [True, False])
def test_a_failing_source_that_never_synced_is_reported_lagging(tmp_path: Path, monkeypatch, operations: bool):
    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr("flows.sync.emit_event", lambda **event: emitted.append(event))
    state = sync_source("drop", config_path=hub(tmp_path, "http://127.0.0.1:9", operations), return_state=True)
    assert state.is_failed()
    if not operations:
        assert emitted == []
        return
    (event,) = emitted
    assert event["event"] == "itsm.source.lagging"
    assert event["resource"] == {"prefect.resource.id": "itsm.source.drop", "prefect.resource.name": "drop"}
    assert event["payload"]["lag_minutes"] is None and "no-such-folder" in event["payload"]["last_error"]


@pytest.mark.parametrize(("minutes_ago", "told"), [(10, False), (45, True)])
def test_a_failing_source_is_reported_only_once_its_lag_passes_the_threshold(tmp_path, monkeypatch, minutes_ago, told):
    from datetime import timedelta

    from sqlalchemy import update

    from itsm_core.models import utcnow
    from itsm_core.store.sync_state import record_run
    from itsm_core.store.tables import SyncStateRow

    config = hub(tmp_path, "http://127.0.0.1:9")
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.transaction() as conn:
        record_run(conn, "drop", "tickets", success=True)
        table = SyncStateRow.__table__
        conn.execute(update(table).values(last_success_at=utcnow() - timedelta(minutes=minutes_ago)))
    store.dispose()
    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr("flows.sync.emit_event", lambda **event: emitted.append(event))
    assert sync_source("drop", config_path=config, return_state=True).is_failed()
    assert [e["payload"]["lag_minutes"] for e in emitted] == ([minutes_ago] if told else [])
