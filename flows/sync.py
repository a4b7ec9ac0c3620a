"""`sync-source`: one source's pull, page by page, one Prefect task per page."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows.artifacts import artifact_key, source_markdown
from flows.runtime import SourceRuntime, build_runtime, load_hub_config
from itsm_core.store.sync_state import record_run
from itsm_core.sync.ingest import BatchReport, ingest_batch


@task(
    name="ingest-page",
    cache_policy=NO_CACHE,  # inputs hold payload references; results are counts, never cached to disk
    retries=2,
    retry_delay_seconds=[2, 10],  # safe: a page is one transaction and landing is idempotent
)
def ingest_page(runtime: SourceRuntime, page: Any) -> BatchReport:
    """Fetch one page, land and apply it in one transaction, then acknowledge it upstream."""
    records = runtime.connector.fetch_page(page)
    with runtime.store.transaction() as conn:
        report = ingest_batch(conn, runtime.pipeline, records)
    runtime.connector.acknowledge(records)  # only now: a crash before this re-reads, never loses
    return report


@flow(name="sync-source", log_prints=False)
def sync_source(source: str, config_path: str | None = None) -> dict[str, int]:
    """Pull one configured source into the store; returns counts (fetched, created, updated, unchanged, quarantined)."""
    logger = get_run_logger()
    config = load_hub_config(config_path)
    runtime = build_runtime(config, config.source(source))
    runtime.store.ensure_current()
    report, pages, succeeded = BatchReport(), 0, False
    try:
        for page in runtime.connector.plan_pages():
            pages += 1
            page_report = ingest_page.with_options(task_run_name=f"{source}-page-{pages}")(quote(runtime), page)
            report += page_report
            logger.info("%s page %d: %s", source, pages, ", ".join(f"{k} {v}" for k, v in page_report.counts().items()))
        succeeded = True
    finally:
        with runtime.store.transaction() as conn:
            record_run(conn, source, "tickets", success=succeeded)
        runtime.store.dispose()
        create_markdown_artifact(
            key=artifact_key("sync", source),
            markdown=source_markdown(source, report, pages),
            description=f"What the sync of {source} fetched, changed and quarantined",
        )
    if report.quarantined:
        logger.warning(
            "%s: %d quarantined; see this run's artifact or `itsm deadletters list`", source, report.quarantined
        )
    return report.counts()
