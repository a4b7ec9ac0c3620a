"""`sync-source`: one source's pull, page by page, one Prefect task per page.

A source reads one or more entities (connectors/base.py): tickets, and for some (GLPI) configuration items too,
synced first so that a ticket's links to its CIs resolve in the same run. Each entity has its own watermark and
run record (sync_state row `(source, entity)`); one that fails does not keep the next from running, and the flow
fails at the end with the first failure.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.utilities.annotations import quote

from connectors.base import TICKETS, SourceConnector
from flows.artifacts import CI_COUNTS, artifact_key, source_markdown
from flows.page_writers import PAGE_TASK, SOURCE_DOWN, committed_in_order, land_records, writer_processes
from flows.runtime import SourceRuntime, build_runtime, load_hub_config
from itsm_core.config import HubConfig
from itsm_core.errors import SourceBusy, failure_text
from itsm_core.memory import long_lived_frozen
from itsm_core.models import RawRecord, utcnow
from itsm_core.store.locks import source_lock
from itsm_core.store.statistics import refresh_statistics
from itsm_core.store.sync_state import get_state, record_run, save_watermark
from itsm_core.sync.batch import BatchReport
from itsm_core.sync.purges import settle_purged, unseen_identities
from itsm_core.threads import context_thread, short_gil_slices

#: The entity every source reads (some read configuration items, "cis", as well).
ENTITY = TICKETS
#: The sync_state entity of a source's purge checks: its watermark is when the last one completed.
PURGES = "purges"
#: Pages fetched ahead of the one being written, so upstream and database time overlap; memory stays a few pages.
PAGES_AHEAD = 2


@task(name="ingest-page", **PAGE_TASK)
def ingest_page(
    runtime: SourceRuntime, entity: str, page: Any, watermark: str | None, records: list[RawRecord] | None = None
) -> tuple[BatchReport, str | None]:
    """Fetch one page of `entity` (unless its `records` were fetched ahead: `fetched_pages`), land and apply it and
    move the entity's watermark in one transaction, then acknowledge the page's records."""
    if records is None:
        records = runtime.connector.fetch_page(page)
    watermark = runtime.connector.page_watermark(page, watermark)
    with runtime.store.transaction() as conn:
        report = land_records(conn, runtime, entity, records)
        if watermark is not None:
            save_watermark(conn, runtime.name, entity, watermark)
    runtime.connector.acknowledge(records)  # only now: a crash before this re-reads, never loses
    refresh_statistics(runtime.store)  # a first load grows tables a hundredfold: the next page's plans need to know
    return report, watermark


def fetched_pages(
    connector: SourceConnector, watermark: str | None, entity: str, ahead: int = PAGES_AHEAD
) -> Iterator[tuple[Any, list[RawRecord]]]:
    """`plan_pages` and `fetch_page` on a thread of their own, up to `ahead` pages ahead of the caller, who writes
    them in order: the upstream's time and the database's overlap instead of adding up. A failure on that thread
    is raised here, at the page it stopped before; a caller that stops early stops the thread after its page.

    Only the planning and fetching move: pages are written, and watermarks committed, one by one in plan order by
    the caller, so the exactly-once contract is the same. The connector is used by that one thread meanwhile."""
    handoff: queue.Queue[tuple[Any, list[RawRecord]] | BaseException | None] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: tuple[Any, list[RawRecord]] | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in connector.plan_pages(watermark, entity):
                if not put((page, connector.fetch_page(page))):
                    return
            put(None)
        except BaseException as exc:  # handed to the caller, who raises it
            put(exc)

    # In the caller's context: the connector's log lines then belong to the flow run and reach the UI
    worker = context_thread(produce, name=f"fetch-{entity}")
    worker.start()
    try:
        # What lives across pages: out of the collector's way until the walk ends; and the writer, back from each
        # round trip to the database, does not wait a whole default time slice for the fetching thread's GIL
        with long_lived_frozen(), short_gil_slices():
            while (item := handoff.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
    finally:
        stop.set()
        worker.join()


def writer_count(runtime: SourceRuntime, entity: str, watermark: str | None) -> int:
    """How many processes write the pages of `entity` from `watermark`: the source's `first_load_processes()` for
    tickets read as a first load (`reads_whole`: the first, or the rest of one that did not finish), otherwise
    one (this one)."""
    if entity == TICKETS and runtime.connector.reads_whole(watermark, entity):
        return runtime.source.first_load_processes(postgresql=runtime.store.dialect == "postgresql")
    return 1


def written_pages(
    runtime: SourceRuntime, config: HubConfig, entity: str, watermark: str | None, writers: int, logger: Any
) -> Iterator[BatchReport]:
    """The entity's pages from `watermark`, fetched ahead (`fetched_pages`) and written in plan order, each
    page's report as its watermark commits: by the `ingest-page` task in this process, page after page; or, with
    `writers` above 1 (`writer_count`), by that many writer processes at once (`flows/page_writers.py`)."""
    # closed on the way out, failure included: a caller keeping the exception keeps this frame, not the fetching
    with contextlib.closing(fetched_pages(runtime.connector, watermark, entity)) as pages:
        if writers == 1:
            for number, (page, records) in enumerate(pages, 1):
                name = f"{runtime.name}-{entity}-page-{number}"
                report, watermark = ingest_page.with_options(task_run_name=name)(
                    quote(runtime), entity, page, watermark, quote(records)
                )
                yield report
            return
        logger.info("%s: a first load of its %s, written by %d processes at once", runtime.name, entity, writers)
        with writer_processes(config, runtime.name, entity, writers) as submit:
            yield from committed_in_order(runtime, entity, watermark, pages, submit, writers)


@task(name="check-purges", cache_policy=NO_CACHE)
def check_purges(runtime: SourceRuntime, entity: str) -> dict[str, int]:
    """Find the source's records purged upstream and settle their tickets (`itsm_core/sync/purges.py`): the ids
    the upstream holds are walked into the store, the hub's identities not among them are checked one by one,
    and those gone are settled as the source's `purged_tickets` says, with their news for the other targets."""
    connector, source, policy = runtime.connector, runtime.name, runtime.source.purge_policy()
    assert policy is not None  # `_purge_checks_due` said so
    with runtime.store.transaction() as conn:
        candidates = unseen_identities(conn, source, connector.present_ids(entity))
    gone = set(connector.gone(entity, [external_id for _, external_id in candidates])) if candidates else set()
    purged = [(ticket_id, external_id) for ticket_id, external_id in candidates if external_id in gone]
    with runtime.store.transaction() as conn:
        changes = settle_purged(conn, source, purged, policy.tickets)
        runtime.pipeline.propagator.propagate(conn, changes)
        save_watermark(conn, source, PURGES, utcnow().isoformat())
    return {"purged": len(purged), "cancelled": len(changes), "unconfirmed": len(candidates) - len(purged)}


def purge_summary(entity: str, counts: dict[str, int]) -> str:
    return (
        f"purge check of its {entity}: {counts['purged']} gone upstream ({counts['cancelled']} cancelled in the hub, "
        f"the link kept in each one's history), {counts['unconfirmed']} not seen but still there"
    )


def _purge_checks_due(runtime: SourceRuntime) -> list[str]:
    """The entities whose purge check is due: the connector can find purges and the last check is older than the
    source's `purge_check_minutes`."""
    policy = runtime.source.purge_policy()
    if policy is None or not runtime.connector.reconciles:
        return []
    with runtime.store.connect() as conn:
        last = (get_state(conn, runtime.name, PURGES) or {}).get("watermark")
    if last is not None and (utcnow() - datetime.fromisoformat(last)).total_seconds() < policy.every_minutes * 60:
        return []
    return sorted(runtime.connector.reconciles & set(runtime.connector.entities))


@flow(name="sync-source", log_prints=False)
def sync_source(source: str, config_path: str | None = None) -> dict[str, int]:
    """Pull one configured source into the store.

    Returns the ticket counts (fetched, created, updated, unchanged, commented, ignored, quarantined) and, for a
    source that reads configuration items, theirs as ``cis_fetched``, ``cis_created``, … (each fetched record is
    counted once, in its entity's counts).
    """
    logger = get_run_logger()
    config = load_hub_config(config_path)
    runtime = build_runtime(config, config.source(source))
    runtime.store.ensure_current()
    try:
        with source_lock(runtime.store.engine, source):
            return _sync(runtime, config, logger)
    except SourceBusy:
        runtime.connector.close()
        runtime.store.dispose()
        raise


def _sync(runtime: SourceRuntime, config: HubConfig, logger: Any) -> dict[str, int]:
    """The body of `sync_source`, under the source's run lock."""
    source = runtime.name
    entities = runtime.connector.entities
    reports = {entity: BatchReport() for entity in entities}
    pages = 0
    failure: Exception | None = None
    failures: dict[str, str] = {}
    purges: dict[str, dict[str, int]] = {}
    notes: list[str] = []
    try:
        for entity in entities:
            with runtime.store.connect() as conn:
                watermark = (get_state(conn, source, entity) or {}).get("watermark")
            if isinstance(failure, SOURCE_DOWN):  # one backoff per cycle for a dead upstream, not one per entity
                failures[entity] = f"skipped: {source} did not answer ({failure}); the next cycle tries again"
                with runtime.store.transaction() as conn:
                    record_run(conn, source, entity, success=False, error=failures[entity])
                continue
            succeeded = False
            if (writers := writer_count(runtime, entity, watermark)) > 1:
                notes.append(f"a first load of its {entity}: pages written by {writers} processes at once")
            try:
                for page_report in written_pages(runtime, config, entity, watermark, writers, logger):
                    pages += 1
                    reports[entity] += page_report
                    counts = ", ".join(f"{k} {v}" for k, v in page_report.counts().items())
                    logger.info("%s page %d (%s): %s", source, pages, entity, counts)
                succeeded = True
            except Exception as exc:
                logger.error("%s: the sync of its %s failed: %s", source, entity, exc)
                failure = failure or exc
                failures[entity] = failure_text(exc)
            finally:
                notices = runtime.connector.notices() if succeeded else None
                with runtime.store.transaction() as conn:
                    record_run(conn, source, entity, success=succeeded, error=failures.get(entity), notices=notices)
        for entity in _purge_checks_due(runtime) if failure is None else []:
            purges[entity] = check_purges(quote(runtime), entity)
            if purges[entity]["purged"]:
                logger.warning("%s: %s", source, purge_summary(entity, purges[entity]))
    finally:
        runtime.connector.close()
        _publish(runtime, reports, pages, failures, purges, notes)
        if failures and config.alerts.operations is not None:
            _report_lag(runtime, list(failures), config.alerts.operations.lag_minutes)
        runtime.store.dispose()
    if failure is not None:
        raise failure
    quarantined = sum(report.quarantined for report in reports.values())
    if quarantined:
        logger.warning("%s: %d quarantined; see this run's artifact or `itsm deadletters list`", source, quarantined)
    counts = reports[TICKETS].counts() if TICKETS in reports else BatchReport().counts()
    for entity, report in reports.items():
        if entity != TICKETS:
            counts.update({f"{entity}_{name}": getattr(report, name) for name in CI_COUNTS})
    return counts


def _report_lag(runtime: SourceRuntime, entities: list[str], lag_minutes: int) -> None:
    """Emit ``itsm.source.lagging`` (prefect.yaml's `ops-alert` automation listens) for each failed entity whose
    last success is older than `lag_minutes`, or that never synced."""
    now = utcnow()
    with runtime.store.connect() as conn:
        states = {entity: get_state(conn, runtime.name, entity) or {} for entity in entities}
    for entity, state in states.items():
        last = state.get("last_success_at")
        lag = (now - last).total_seconds() / 60 if last is not None else None
        if lag is not None and lag < lag_minutes:
            continue
        emit_event(
            event="itsm.source.lagging",
            resource={"prefect.resource.id": f"itsm.source.{runtime.name}", "prefect.resource.name": runtime.name},
            payload={"entity": entity, "lag_minutes": None if lag is None else round(lag),
                     "last_error": (state.get("details") or {}).get("last_error")},
        )  # fmt: skip


def _publish(
    runtime: SourceRuntime,
    reports: dict[str, BatchReport],
    pages: int,
    failures: dict[str, str],
    purges: dict[str, dict[str, int]],
    notes: list[str],
) -> None:
    """The run's artifact: failures first (with the last success and the lag), then counts and dead letters."""
    source = runtime.name
    with runtime.store.connect() as conn:
        last_success = {entity: (get_state(conn, source, entity) or {}).get("last_success_at") for entity in reports}
    markdown = source_markdown(
        source, reports, pages, runtime.pipeline.rules.model_problems, failures=failures, last_success=last_success
    )
    notices = notes + runtime.connector.notices()
    if notices:
        markdown += "\n\n## Notices\n\n" + "\n".join(f"- {notice}" for notice in notices)
    if purges:
        markdown += "\n\n## Purged upstream\n\n" + "\n".join(f"- {purge_summary(e, c)}" for e, c in purges.items())
    create_markdown_artifact(
        key=artifact_key("sync", source),
        markdown=markdown,
        description=f"What the sync of {source} fetched, changed and quarantined" + (" — FAILED" if failures else ""),
    )
