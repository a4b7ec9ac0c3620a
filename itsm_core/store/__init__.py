"""The canonical store: one database (SQLite by default, PostgreSQL in production) behind one object.

```python
store = Store("sqlite:///itsm.db")
store.upgrade()                      # apply migrations
with store.transaction() as conn:    # one transaction per batch
    ingest_batch(conn, pipeline, records)
```
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from itsm_core.errors import StoreError
from itsm_core.store import migrate
from itsm_core.store.engine import make_engine, redact_url


class Store:
    def __init__(self, url: str) -> None:
        self.display_url = redact_url(url)
        self.engine = make_engine(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def upgrade(self) -> tuple[str | None, str | None]:
        """Apply pending migrations; returns (revision before, revision after)."""
        with self._reaching():
            before = migrate.current_revision(self.engine)
            migrate.upgrade(self.engine)
            return before, migrate.current_revision(self.engine)

    def ensure_current(self) -> None:
        """Raise `StoreError` unless the schema is at the revision this code expects."""
        with self._reaching():
            current = migrate.current_revision(self.engine)
        head = migrate.head_revision()
        if current != head:
            state = "has no schema yet" if current is None else f"is at schema revision {current}, expected {head}"
            raise StoreError(f"the database {self.display_url} {state}; run `itsm db upgrade` first")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._reaching(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._reaching(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Turn "cannot connect" into an error that names the database (without its password) and the fix."""
        try:
            yield
        except OperationalError as exc:
            if exc.connection_invalidated or "connect" in str(exc.orig).lower() or "unable to open" in str(exc.orig):
                raise StoreError(
                    f"cannot reach the database {self.display_url}: {str(exc.orig).strip().splitlines()[0]}; "
                    "check database_url in the config and that the server is running"
                ) from None
            raise

    def dispose(self) -> None:
        self.engine.dispose()
