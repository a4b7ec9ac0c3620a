"""A GLPI pull in a process of its own, for the crash test to kill: ``python -m tests.faults.pull_child CONFIG``.

Exits 0 once every page of every entity is committed (what `sync-source` does, without Prefect)."""

from __future__ import annotations

import sys

from itsm_core.config import load_config
from itsm_core.store import Store
from tests.support.glpi import pull

if __name__ == "__main__":
    config = load_config(sys.argv[1])
    store = Store(config.database_url.get_secret_value())
    try:
        pull(config, store)
    finally:
        store.dispose()
