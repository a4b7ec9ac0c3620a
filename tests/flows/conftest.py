import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from itsm_core.store import Store
from tests.support.dovecot import ImapServer, running_dovecot, source_settings
from tests.support.webhook_receiver import Receiver, run_receiver


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """One temporary Prefect API for the whole session (it takes ~10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@dataclass(frozen=True)
class ImapHub:
    """A private Dovecot with the mailbox `helpdesk` (put mail there with `tests.support.dovecot.deliver`) and
    a migrated SQLite store at `url`, for a hub whose config `configure` writes."""

    server: ImapServer
    url: str
    config: Path

    def configure(self, extra_yaml: str = "", **source: object) -> str:
        """Write the config (the store, the one source `helpdesk` reading the mailbox, with `source` settings
        changed, then `extra_yaml`); return its path for `hub_cycle(config_path=...)`."""
        line = json.dumps(source_settings(self.server, **source))  # JSON is YAML
        self.config.write_text(f"database_url: {self.url}\nsources:\n  - {line}\n{extra_yaml}")
        return str(self.config)


@pytest.fixture
def imap_hub(tmp_path: Path) -> Iterator[ImapHub]:
    with running_dovecot(tmp_path / "dovecot", {"helpdesk": "imap-pw"}) as server:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        Store(url).upgrade()
        yield ImapHub(server, url, tmp_path / "itsm.yaml")


@pytest.fixture
def receiver(tmp_path: Path, database_url: str) -> Iterator[Receiver]:
    """`itsm webhooks serve` running on loopback over a fresh store (each database)."""
    yield from run_receiver(tmp_path, database_url)
