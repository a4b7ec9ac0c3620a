"""Where a page of records is written: in the flow's process, or — for a first load — by several processes at once.

A first load of a large ticket system (100,000 GLPI tickets) is bound by the CPU that decodes, maps and writes
each page; in one process that work runs one thread at a time (the GIL). A source whose
`first_load_processes()` is above 1 (GLPI's `first_load_writers`; PostgreSQL only) has its first load of tickets
written by that many processes: Prefect's `ProcessPoolTaskRunner`, one `write-page` task run per page, each
process with the source's runtime built once from the run's config (`start_writer`). The flow's process keeps
planning and fetching ahead (`flows.sync.fetched_pages`) and commits the watermark.

What stays as with one writer (`written_in_order`):
- each page is one transaction, landed idempotently and retried after a database hiccup;
- a ticket's versions land in plan order: a page holding an identity that a page in flight holds waits for that
  page (a ticket modified during the walk comes again later in it);
- the watermark moves in plan order, by the flow, once a page and every page before it have committed. It is
  committed after the page's own transaction, not in it: a crash between the two re-reads that page next time,
  which lands nothing new.

Later runs carry only what changed since the last one, a few pages: they are written in the flow's process, since
starting processes would cost more than they save.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import State
from prefect.task_runners import ProcessPoolTaskRunner
from prefect.utilities.annotations import quote
from sqlalchemy import Connection

from connectors.base import CIS, TICKETS
from flows.runtime import SourceRuntime, build_runtime, scrub_secrets_of
from itsm_core.config import HubConfig
from itsm_core.errors import ImapUnavailable, UpstreamError, UpstreamUnavailable, WriterLost
from itsm_core.memory import freeze_long_lived
from itsm_core.models import RawRecord
from itsm_core.store.statistics import refresh_statistics
from itsm_core.store.sync_state import save_watermark
from itsm_core.sync.batch import BatchReport
from itsm_core.sync.ingest import ingest_batch
from itsm_core.sync.ingest_cis import ingest_ci_batch

#: A failure that means the source is down: its other entities are not tried in the same run.
SOURCE_DOWN = (UpstreamUnavailable, ImapUnavailable, OSError)

Page = TypeVar("Page")


class Written(Protocol):
    """A page handed to a writer: its report once the page's transaction has committed (raises if it failed)."""

    def result(self) -> BatchReport: ...


def land_records(conn: Connection, runtime: SourceRuntime, entity: str, records: list[RawRecord]) -> BatchReport:
    """Land and apply one page of `entity` in the caller's transaction."""
    if entity == TICKETS:
        return ingest_batch(conn, runtime.pipeline, records)
    if entity == CIS and runtime.pipeline.cis is not None:
        return ingest_ci_batch(conn, runtime.pipeline.cis, records)
    raise ValueError(f"{runtime.name}: a page of {entity!r}, which this source's pipeline does not take")


def worth_retrying(task: Any, task_run: Any, state: State) -> bool:
    """Retry a page after a database hiccup, not after a source that is down: its client has already spent its
    own retry policy (e.g. GLPI's `retry_attempts` with backoff), and paying it again per retry only delays the
    failure that ops should see."""
    return not isinstance(state.data, (*SOURCE_DOWN, UpstreamError))  # the exception the task raised


#: The options of every task that writes a page (`ingest-page` in the flow's process, `write-page` in a writer).
PAGE_TASK: dict[str, Any] = {
    "cache_policy": NO_CACHE,  # inputs hold payload references; results are counts, never cached to disk
    "retries": 2,
    "retry_delay_seconds": [2, 10],  # safe: a page is one transaction and landing is idempotent
    "retry_condition_fn": worth_retrying,
}


def written_in_order(
    pages: Iterable[tuple[Page, list[RawRecord]]], submit: Callable[[list[RawRecord]], Written], width: int
) -> Iterator[tuple[Page, list[RawRecord], BatchReport]]:
    """Each page's records handed to `submit`, at most `width` pages in flight; yields `(page, records, report)` in
    plan order, each once it and every page before it are written. A page sharing a record identity with a page
    in flight is submitted only after that page is written. A page without records is written by nobody: it is
    yielded in its turn (it may still move the watermark).

    If a page fails, the pages still in flight are waited for (their transactions are over when the caller goes
    on) and the failure is raised; no page after the failed one is yielded."""
    window: deque[tuple[Page, list[RawRecord], frozenset[str], Written | None]] = deque()

    def oldest() -> tuple[Page, list[RawRecord], BatchReport]:
        page, records, _, written = window.popleft()
        try:
            return page, records, written.result() if written is not None else BatchReport()
        except BrokenProcessPool:
            raise WriterLost(
                "a writer process died while it wrote a page (killed: out of memory?); that page rolled back and "
                "the pages committed before it stay: the next run goes on from them. If it recurs, lower the "
                "source's first_load_writers or page_size, or give the worker more memory"
            ) from None

    try:
        for page, records in pages:
            identities = frozenset(record.external_id for record in records)
            while window and (
                sum(written is not None for *_, written in window) >= width
                or any(identities & held for _, _, held, _ in window)
            ):
                yield oldest()
            window.append((page, records, identities, submit(records) if records else None))
        while window:
            yield oldest()
    finally:
        for *_, written in window:
            if written is not None:
                with contextlib.suppress(Exception):  # the first failure is the one raised
                    written.result()


def committed_in_order(
    runtime: SourceRuntime,
    entity: str,
    watermark: str | None,
    pages: Iterable[tuple[Any, list[RawRecord]]],
    submit: Callable[[list[RawRecord]], Written],
    width: int,
) -> Iterator[BatchReport]:
    """`written_in_order`, and as each page's turn comes, its watermark committed in a transaction of this process
    and then its records acknowledged; yields each page's report."""
    for page, records, report in written_in_order(pages, submit, width):
        watermark = runtime.connector.page_watermark(page, watermark)
        if watermark is not None:
            with runtime.store.transaction() as conn:
                save_watermark(conn, runtime.name, entity, watermark)
        runtime.connector.acknowledge(records)
        yield report


# --- the writer processes -----------------------------------------------------------------------------------------

#: In a writer process: each source's runtime, built once by `start_writer`.
_RUNTIMES: dict[str, SourceRuntime] = {}


def start_writer(config: HubConfig, source: str) -> None:
    """A writer process's set-up: `source`'s runtime (store, pipeline, rules) built once from the run's config,
    whose secrets this process's log lines scrub too."""
    scrub_secrets_of(config)
    _RUNTIMES[source] = build_runtime(config, config.source(source))
    freeze_long_lived()  # what the pages allocate is collected; what lives on is no longer walked with it


def write_records(source: str, entity: str, records: list[RawRecord]) -> BatchReport:
    """One page of `entity` landed and applied in one transaction, in this writer process's runtime of `source`."""
    runtime = _RUNTIMES.get(source)
    if runtime is None:
        raise RuntimeError(f"this process writes no pages of {source!r}: start it with start_writer(config, source)")
    with runtime.store.transaction() as conn:
        report = land_records(conn, runtime, entity, records)
    refresh_statistics(runtime.store)  # a first load grows tables a hundredfold: the next page's plans need to know
    return report


def writer_started() -> int:
    """Nothing but the writer's set-up (`start_writer`, run before a process's first task); returns its pid."""
    return os.getpid()


@task(name="start-writer", cache_policy=NO_CACHE)
def start_writer_task() -> int:
    """A writer process started and its runtime built, before the first page comes."""
    return writer_started()


@task(name="write-page", **PAGE_TASK)
def write_page(source: str, entity: str, records: list[RawRecord]) -> BatchReport:
    """A page fetched by the flow, written in a writer process; the flow commits its watermark in plan order."""
    return write_records(source, entity, records)


@contextlib.contextmanager
def writer_processes(
    config: HubConfig, source: str, entity: str, count: int
) -> Iterator[Callable[[list[RawRecord]], Written]]:
    """`count` writer processes for `source`'s pages of `entity` (Prefect's `ProcessPoolTaskRunner`); yields the
    function that hands one page to them. On leaving, every page handed over is over.

    The processes start now, each with a `start-writer` task run: a writer takes a few seconds to import and build
    its runtime, which then overlaps the fetching of the first page (GLPI's sub-item walks) instead of following
    it. The pool starts a process per task submitted while none is idle, so `count` of them start `count`."""
    with (
        _same_prefect_api(),
        ProcessPoolTaskRunner(max_workers=count, initializer=start_writer, initargs=(config, source)) as runner,
    ):
        for number in range(1, count + 1):
            runner.submit(start_writer_task.with_options(task_run_name=f"{source}-writer-{number}-started"), {})
        handed = 0

        def submit(records: list[RawRecord]) -> Written:
            nonlocal handed
            handed += 1
            named = write_page.with_options(task_run_name=f"{source}-{entity}-written-{handed}")
            return runner.submit(named, {"source": source, "entity": entity, "records": quote(records)})

        yield submit


def _same_prefect_api() -> contextlib.AbstractContextManager[object]:
    """The writers' task runs reported to the API this flow run reports to. Without `PREFECT_API_URL` (`itsm sync`
    run by hand: a temporary server in this process), each writer would otherwise start a temporary server of its
    own, and its task runs would land there, unseen."""
    run = FlowRunContext.get()
    if PREFECT_API_URL.value() or run is None or run.client is None:
        return contextlib.nullcontext()
    return temporary_settings(updates={PREFECT_API_URL: str(run.client.api_url)})
