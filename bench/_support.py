"""What the benchmarks share: a fresh PostgreSQL schema per run, progress on stderr, peak RSS."""

from __future__ import annotations

import resource
import sys
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def process_peak_rss_mb(pid: int) -> float | None:
    """Another process's peak RSS (Linux: VmHWM), read while it runs."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class Schema:
    """A schema made for one run in the given PostgreSQL database (`url` searches it first), dropped by `drop`."""

    def __init__(self, database_url: str, prefix: str) -> None:
        base = make_url(database_url)
        if base.drivername == "postgresql":
            base = base.set(drivername="postgresql+psycopg")
        if base.get_backend_name() != "postgresql":
            raise SystemExit("--database-url must be a PostgreSQL URL")
        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(base)
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        url = base.update_query_dict({"options": f"-csearch_path={self.name}"})
        self.url = url.render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.name}" CASCADE'))
        self.admin.dispose()
