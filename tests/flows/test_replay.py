"""The `replay-dead-letters` flow (the deployment ops start from the Prefect UI) on a real Prefect API."""

import pytest

from flows.replay import replay_dead_letters
from itsm_core.store import Store
from itsm_core.store.quarantine import count_dead_letters, quarantine
from itsm_core.store.tickets import count_tickets

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]


def test_the_flow_replays_a_quarantined_record_into_a_ticket_and_reports_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    (tmp_path / "inbox").mkdir()
    config = tmp_path / "itsm.yaml"
    config.write_text(f"database_url: {url}\nsources:\n  - {{name: drop, kind: maildir, path: inbox}}\n")
    store = Store(url)
    store.upgrade()
    mail = b"From: ann@example.org\r\nSubject: printer\r\nMessage-ID: <p1@x>\r\n\r\nIt jams.\r\n"
    with store.transaction() as conn:
        quarantine(
            conn,
            [{"source": "drop", "stage": "map", "external_id": "p1@x", "payload": mail, "payload_format": "eml",
              "reason": "a mapping since fixed", "traceback": None}],
        )  # fmt: skip
    counts = replay_dead_letters(source="drop", config_path=str(config))
    assert counts == {"replayed": 1, "requeued": 0, "still_failing": 0}
    with store.connect() as conn:
        assert count_tickets(conn) == 1 and count_dead_letters(conn) == 0
    assert replay_dead_letters(config_path=str(config)) == {"replayed": 0, "requeued": 0, "still_failing": 0}
    store.dispose()
