"""The conformance suite's fixtures: every registered kind, its testbed, and a hub reading it.

A hub here syncs as `sync-source` does — every entity in the connector's order, each page through the flow's
own page task (`ingest_page.fn`, without Prefect) — so the suite checks the connector inside the real pipeline.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from connectors.base import SourceConnector
from connectors.registry import ConnectorKind, registered_kinds
from flows.runtime import SourceRuntime, build_runtime
from flows.sync import ingest_page
from itsm_core.config import HubConfig, parse_config
from itsm_core.store import Store
from itsm_core.store.sync_state import get_state
from itsm_core.sync.batch import BatchReport
from tests.connectors.conformance.testbed import SOURCE, Testbed


def _connector_class(kind: ConnectorKind) -> type[SourceConnector]:
    factory = kind.connector
    return factory if isinstance(factory, type) else factory.__self__  # a class, or one of its classmethods


TESTBEDS = Path(__file__).parent / "testbeds"
KINDS = sorted(registered_kinds())
TWO_WAY_KINDS = [name for name in KINDS if registered_kinds()[name].two_way]
#: Kinds whose connector finds records purged upstream, for tickets.
RECONCILING_KINDS = [name for name in KINDS if "tickets" in _connector_class(registered_kinds()[name]).reconciles]
#: Small pages, so that a handful of records make several.
PAGE_SIZE = 4

#: Called after each committed page: (connector, entity, watermark now committed).
PageHook = Callable[[SourceConnector, str, str | None], None]


def testbed_class(kind: ConnectorKind, variant: str | None = None) -> type[Testbed]:
    """The kind's testbed: its own declaration (a kind shipped elsewhere), else ``testbeds/<kind>.py`` — or, for
    `variant`, the one of that name in the module's ``VARIANTS`` (the same kind configured another way, e.g.
    Solman through OData instead of ICT)."""
    if variant is not None:
        return importlib.import_module(f"tests.connectors.conformance.testbeds.{kind.name}").VARIANTS[variant]
    if kind.testbed:
        module, _, name = kind.testbed.partition(":")
        return getattr(importlib.import_module(module), name)
    path = TESTBEDS / f"{kind.name}.py"
    if not path.exists():
        pytest.fail(
            f"the connector kind {kind.name!r} has no conformance testbed: add {path.relative_to(Path.cwd())} "
            f"(TESTBED = a Testbed subclass) or declare ConnectorKind.testbed"
        )
    module = importlib.import_module(f"tests.connectors.conformance.testbeds.{kind.name}")
    return module.TESTBED


@dataclass
class Hub:
    """A store and a config with the testbed's source, synced page by page as the flow does."""

    testbed: Testbed
    config: HubConfig
    store: Store
    reports: list[dict[str, BatchReport]] = field(default_factory=list)

    def runtime(self) -> SourceRuntime:
        return build_runtime(self.config, self.config.source(SOURCE), store=self.store)

    def watermark(self, entity: str) -> str | None:
        with self.store.connect() as conn:
            return (get_state(conn, SOURCE, entity) or {}).get("watermark")

    def sync(self, on_page: PageHook | None = None, runtime: SourceRuntime | None = None) -> dict[str, BatchReport]:
        """One run over every entity, each from its committed watermark; the reports by entity."""
        runtime = runtime or self.runtime()
        reports: dict[str, BatchReport] = {}
        try:
            for entity in runtime.connector.entities:
                watermark = self.watermark(entity)
                reports[entity] = BatchReport()
                for page in runtime.connector.plan_pages(watermark, entity):
                    report, watermark = ingest_page.fn(runtime, entity, page, watermark)
                    reports[entity] += report
                    if on_page is not None:
                        on_page(runtime.connector, entity, watermark)
        finally:
            runtime.connector.close()
        self.reports.append(reports)
        return reports

    def count(self, table: Any, **equal: Any) -> int:
        query = select(func.count()).select_from(table)
        for column, value in equal.items():
            query = query.where(getattr(table.c, column) == value)
        with self.store.connect() as conn:
            return conn.execute(query).scalar_one()


def _cases(names: list[str]) -> list[Any]:
    """Each kind, then each variant of its testbed (``VARIANTS`` in ``testbeds/<kind>.py``), as (kind, variant)."""
    cases = []
    for name in names:
        cases.append(pytest.param((name, None), id=name))
        module = TESTBEDS / f"{name}.py"
        if not registered_kinds()[name].testbed and module.exists():
            variants = getattr(importlib.import_module(f"tests.connectors.conformance.testbeds.{name}"), "VARIANTS", {})
            cases += [pytest.param((name, variant), id=f"{name}-{variant}") for variant in variants]
    return cases


@pytest.fixture(params=_cases(KINDS))
def kind(request: pytest.FixtureRequest) -> tuple[ConnectorKind, str | None]:
    name, variant = request.param
    return registered_kinds()[name], variant


@pytest.fixture(params=_cases(TWO_WAY_KINDS))
def two_way_kind(request: pytest.FixtureRequest) -> tuple[ConnectorKind, str | None]:
    name, variant = request.param
    return registered_kinds()[name], variant


def _hub(case: tuple[ConnectorKind, str | None], tmp_path: Path) -> Iterator[Hub]:
    kind, variant = case
    testbed = testbed_class(kind, variant)(tmp_path / "upstream")
    try:
        database_url = f"sqlite:///{tmp_path / 'hub.db'}"
        text = yaml.safe_dump({"database_url": database_url, "sources": [testbed.source(PAGE_SIZE)]})
        store = Store(database_url)
        store.upgrade()
        try:
            yield Hub(testbed, parse_config(text, base_dir=tmp_path), store)
        finally:
            store.dispose()
    finally:
        testbed.close()


@pytest.fixture
def hub(kind: tuple[ConnectorKind, str | None], tmp_path: Path) -> Iterator[Hub]:
    """A hub with one source of `kind`, over its testbed (empty until the test adds records)."""
    yield from _hub(kind, tmp_path)


@pytest.fixture(params=_cases(RECONCILING_KINDS))
def reconciling_kind(request: pytest.FixtureRequest) -> tuple[ConnectorKind, str | None]:
    name, variant = request.param
    return registered_kinds()[name], variant


@pytest.fixture
def reconciling_hub(reconciling_kind: tuple[ConnectorKind, str | None], tmp_path: Path) -> Iterator[Hub]:
    """The same, for the kinds that find records purged upstream."""
    yield from _hub(reconciling_kind, tmp_path)


@pytest.fixture
def two_way_hub(two_way_kind: tuple[ConnectorKind, str | None], tmp_path: Path) -> Iterator[Hub]:
    """The same, for the kinds that also take the hub's changes."""
    yield from _hub(two_way_kind, tmp_path)
