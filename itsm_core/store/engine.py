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
    engine = create_engine(parsed, pool_pre_ping=True, **kwargs)
    event.listen(engine, "connect", _postgres_session)
    return engine


def _postgres_session(dbapi_connection: Any, _record: Any) -> None:
    """Plan every statement for its own values. psycopg prepares a statement on its fifth execution and
    PostgreSQL may then keep a generic plan for it, chosen while a table was small or never analyzed: during a
    first sync `comment_refs.external_id = ANY($2)` then filters every row of the system instead of using the
    unique index, and ingest grew from 1 to 6 ms per ticket over 20,000 tickets (bench/glpi_sync.py). Planning
    these batch statements costs a fraction of a millisecond."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # a SET outside any transaction: it lasts the session
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.autocommit = autocommit


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (CLI) never block the cycle's writer
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
