"""`alembic upgrade head` must yield exactly the schema the table classes declare, on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError

from itsm_core.store import Store, migrate
from itsm_core.store.tables import metadata


def test_upgrade_head_matches_the_declared_tables(database_url):
    store = Store(database_url)
    assert store.upgrade() == (None, migrate.head_revision())
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        assert set(inspect(conn).get_table_names()) >= set(metadata.tables)
    store.dispose()


def test_upgrade_is_idempotent_and_downgrade_empties(database_url):
    store = Store(database_url)
    store.upgrade()
    head = migrate.head_revision()
    assert store.upgrade() == (head, head)
    from alembic import command

    command.downgrade(migrate.alembic_config(store.engine), "base")
    with store.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    store.dispose()


def test_ensure_current_explains_an_unmigrated_database(database_url):
    from itsm_core.errors import StoreError

    store = Store(database_url)
    with pytest.raises(StoreError, match="run `itsm db upgrade`"):
        store.ensure_current()
    store.upgrade()
    store.ensure_current()
    store.dispose()


def test_audit_events_are_append_only(store):
    with store.transaction() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_events (at, entity, entity_id, field, actor) "
                "VALUES (CURRENT_TIMESTAMP, 'ticket', 1, 'status', 'user:alice')"
            )
        )
    for statement in ("UPDATE audit_events SET actor = 'user:mallory'", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError, match="append-only"), store.transaction() as conn:
            conn.execute(text(statement))
    with store.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit_events")).scalar_one() == "user:alice"
