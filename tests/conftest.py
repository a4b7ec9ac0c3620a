"""Shared fixtures: a fresh store per test on SQLite, and on PostgreSQL when ITSM_TEST_DATABASE_URL is set.

In CI (CI=true) a missing ITSM_TEST_DATABASE_URL stops the run: PostgreSQL tests must run there, never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from itsm_core.store import Store

PG_URL = os.environ.get("ITSM_TEST_DATABASE_URL")
REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    faults = parser.getgroup("itsm faults", "tests/faults: crash and convergence tests")
    faults.addoption("--kills", type=int, default=20, help="SIGKILLs per crash-test run (default 20)")
    faults.addoption("--runs", type=int, default=1, help="crash-test runs, each with its own seed (soaks)")
    faults.addoption("--fault-seed", type=int, default=20261205, help="the first run's seed (printed on failure)")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") and not PG_URL:
        raise pytest.UsageError(
            "CI is set but ITSM_TEST_DATABASE_URL is not: the PostgreSQL tests must run in CI. "
            ".ci/run creates a fresh database and sets it."
        )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a fresh, empty schema in the test database (dropped afterwards)."""
    with fresh_postgres_schema() as url:
        yield url


@contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    """`postgres_url`, for a test that needs more than one store."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need ITSM_TEST_DATABASE_URL (a database they may write to)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).set(drivername="postgresql+psycopg")
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, and (second parameter) a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store on each database."""
    store = Store(database_url)
    store.upgrade()
    yield store
    store.dispose()
