"""Alembic environment. The engine comes from `itsm_core.store.migrate` (or, for the `alembic` command
line, from the ITSM_DATABASE_URL variable / `sqlalchemy.url` in alembic.ini)."""

from __future__ import annotations

import os

from alembic import context

from itsm_core.store.engine import make_engine
from itsm_core.store.tables import metadata

config = context.config


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        url = os.environ.get("ITSM_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
        if not url:
            raise SystemExit("set ITSM_DATABASE_URL to the database to migrate (or run `itsm db upgrade`)")
        engine = make_engine(url)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
            compare_type=True,
        )
        context.run_migrations()


run_migrations()
