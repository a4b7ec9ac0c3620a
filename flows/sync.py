"""`sync-source`: one source's pull, page by page, one Prefect task per page."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows.artifacts import artifact_key, source_markdown
from flows.runtime import SourceRuntime, build_runtime, load_hub_config
from itsm_core.store.sync_state import get_state, record_run, save_watermark
from itsm_core.sync.ingest import BatchReport, ingest_batch

ENTITY = "tickets"


@task(
    name="ingest-page",
    cache_policy=NO_CACHE,  # inputs hold payload references; results are counts, never cached to disk
    retries=2,
    retry_delay_seconds=[2, 10],  # safe: a page is one transaction and landing is idempotent
)
def ingest_page(runtime: SourceRuntime, page: Any, watermark: str | None) -> tuple[BatchReport, str | None]:
    """Fetch one page, land and apply it and move the watermark in one transaction, then acknowledge upstream."""
    records = runtime.connector.fetch_page(page)
    watermark = runtime.connector.page_watermark(page, watermark)
    with runtime.store.transaction() as conn:
        report = ingest_batch(conn, runtime.pipeline, records)
        if watermark is not None:
            save_watermark(conn, runtime.name, ENTITY, watermark)
    runtime.connector.acknowledge(records)  # only now: a crash before this re-reads, never loses
    return report, watermark


@flow(name="sync-source", log_prints=False)
def sync_source(source: str, config_path: str | None = None) -> dict[str, int]:
    """Pull one configured source into the store; returns counts (fetched, created, updated, unchanged, quarantined)."""
    logger = get_run_logger()
    config = load_hub_config(config_path)
    runtime = build_runtime(config, config.source(source))
    runtime.store.ensure_current()
    report, pages, succeeded = BatchReport(), 0, False
    with runtime.store.connect() as conn:
        watermark = (get_state(conn, source, ENTITY) or {}).get("watermark")
    try:
        for page in runtime.connector.plan_pages(watermark):
            pages += 1
            task = ingest_page.with_options(task_run_name=f"{source}-page-{pages}")
            page_report, watermark = task(quote(runtime), page, watermark)
            report += page_report
            logger.info("%s page %d: %s", source, pages, ", ".join(f"{k} {v}" for k, v in page_report.counts().items()))
        succeeded = True
    finally:
        with runtime.store.transaction() as conn:
            record_run(conn, source, ENTITY, success=succeeded)
        runtime.connector.close()
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
