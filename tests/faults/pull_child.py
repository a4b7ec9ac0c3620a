"""A pull in a process of its own, for the crash test to kill: ``python -m tests.faults.pull_child CONFIG [SOURCE]``.

Prints ``pulling`` once its imports are done (the test times its kill from there, not from the interpreter's slow
start), then pulls SOURCE (default ``glpi``) and exits 0 once every page of every entity is committed (what
`sync-source` does, without Prefect)."""

from __future__ import annotations

import sys

from itsm_core.config import load_config
from itsm_core.store import Store
from tests.support.glpi import SOURCE, pull

if __name__ == "__main__":
    config = load_config(sys.argv[1])
    store = Store(config.database_url.get_secret_value())
    print("pulling", flush=True)
    try:
        pull(config, store, source=sys.argv[2] if len(sys.argv) > 2 else SOURCE)
    finally:
        store.dispose()
