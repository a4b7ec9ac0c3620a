"""Opening the store's database: one engine per URL, tuned per dialect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***, safe for logs, errors and artifacts."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL may still hold a secret: show nothing of it
        return "<unparsable database URL>"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`. SQLite gets foreign keys, WAL and a busy timeout; its folder is created."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        # Default to psycopg 3, the driver we ship, rather than psycopg2 which we do not.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (CLI) never block the cycle's writer
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
