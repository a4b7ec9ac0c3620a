"""One run at a time per source: a lock the database (or the operating system) holds for the run's lifetime.

Two `itsm run` started together, or two workers that picked up the same deployment, would otherwise pull the
same pages into one store at once. Landing is idempotent, so nothing would be imported twice, but both would
spend the upstream's requests, race on the watermark and double every count in the artifacts. The second run
therefore stops at once with `SourceBusy` ("already running"), and the first is not disturbed.

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a connection of its own, keyed by the
  source's name. PostgreSQL releases it when that connection ends — also when the worker is killed — so a crash
  never leaves a source locked. Chosen over Prefect's concurrency limits because it guards the store itself,
  whichever way the run started (CLI, deployment, ad-hoc script), and needs no server-side setup.
- SQLite (one machine by definition): an exclusive `flock` on a file beside the database, which the kernel
  releases when the process dies.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from itsm_core.errors import SourceBusy

#: Namespaces the advisory-lock keys, so another application on the same database cannot collide by accident.
_KEY_PREFIX = "itsm-hub.sync:"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256((_KEY_PREFIX + name).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def source_lock(engine: Engine, source: str) -> Iterator[None]:
    """Hold the run lock of `source` until the block ends; raise `SourceBusy` at once if another run holds it."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, source):
            yield
    else:
        with _file_lock(engine, source):
            yield


def _busy(source: str, how: str) -> SourceBusy:
    return SourceBusy(
        f"{source} is already being synced by another run ({how}); this run did nothing. Wait for that run to end, "
        "or find it in the Prefect UI (flow runs of sync-source / hub-cycle) if you think it is stuck"
    )


@contextmanager
def _advisory_lock(engine: Engine, source: str) -> Iterator[None]:
    key = advisory_key(source)
    with engine.connect() as conn:
        taken = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one()
        conn.commit()  # the lock is the session's, not the transaction's: end the read transaction at once
        if not taken:
            raise _busy(source, f"PostgreSQL advisory lock {key}")
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()


@contextmanager
def _file_lock(engine: Engine, source: str) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":  # a private in-memory store: nobody else can reach it
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows has no flock; SQLite there is for trying the hub out, one process at a time
        yield
        return
    safe = hashlib.sha256(source.encode()).hexdigest()[:16]
    path = Path(f"{database}.sync-{safe}.lock")
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(source, f"lock file {path}") from None
        yield
    finally:
        os.close(handle)  # closing the descriptor releases the lock
