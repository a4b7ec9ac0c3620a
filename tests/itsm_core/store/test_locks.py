"""The run lock of a source: a second run is refused at once, other sources are free, and a holder killed with
SIGKILL leaves nothing locked. On a SQLite file and on PostgreSQL, each holder with its own engine (as two
processes or two workers have)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from itsm_core.errors import SourceBusy
from itsm_core.store import Store
from itsm_core.store.locks import source_lock

REPO = Path(__file__).resolve().parents[3]


def test_a_second_run_of_a_source_is_refused_while_the_first_holds_it(database_url):
    first, second = Store(database_url), Store(database_url)
    try:
        with source_lock(first.engine, "glpi"):
            busy = "glpi is already being synced by another run"
            with pytest.raises(SourceBusy, match=busy) as refused, source_lock(second.engine, "glpi"):
                pytest.fail("two runs held the lock of one source")
            assert "Wait for that run to end" in str(refused.value)
            with source_lock(second.engine, "mailbox"):  # another source is not held up
                pass
        with source_lock(second.engine, "glpi"):  # released when the first run ended
            pass
    finally:
        first.dispose()
        second.dispose()


HOLDER = """
import sys, time
from itsm_core.store import Store
from itsm_core.store.locks import source_lock
with source_lock(Store(sys.argv[1]).engine, "glpi"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_holder_killed_with_sigkill_leaves_the_source_free(database_url):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database_url],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    store = Store(database_url)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(SourceBusy), source_lock(store.engine, "glpi"):
            pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10  # PostgreSQL ends the dead client's session when it sees the socket close
        while True:
            try:
                with source_lock(store.engine, "glpi"):
                    break
            except SourceBusy:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        holder.kill()
        store.dispose()
