"""Opening the store: the per-dialect session settings each new connection gets."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from itsm_core.store import Store


@pytest.mark.postgres
def test_postgres_sessions_plan_each_statement_for_its_values_and_keep_the_urls_options(postgres_url):
    store = Store(postgres_url)
    try:
        for _ in range(2):  # a fresh connection and a pooled one
            with store.connect() as conn:
                assert conn.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"
                assert conn.execute(text("SHOW search_path")).scalar_one().startswith("t_")  # the URL's options
    finally:
        store.dispose()


def test_sqlite_sessions_enforce_foreign_keys_and_use_wal(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with store.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    finally:
        store.dispose()
