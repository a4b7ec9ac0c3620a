"""`report`: one report definition of the config for one period: its standard reports computed in the database,
written to its destination in its formats, and a Prefect artifact with the headline figures and the files."""

from __future__ import annotations

from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.runtime import load_hub_config
from itsm_core.errors import ConfigError, ModelError
from itsm_core.models import utcnow
from itsm_core.reports.export import export_tickets
from itsm_core.reports.files import write_tables
from itsm_core.reports.period import Period, between, named
from itsm_core.reports.queries import REPORTS, kb_trends
from itsm_core.reports.spec import TICKET_EXPORT, ReportDefinition
from itsm_core.rules.model import TextModel
from itsm_core.rules.spec import ModelSpec
from itsm_core.store import Store


def period_of(definition: ReportDefinition, first: str | None, last: str | None) -> Period:
    """The definition's own period as of now, or the local days `first` to `last` (both included)."""
    if first is None and last is None:
        return named(definition.period, definition.timezone, utcnow())
    if first is None or last is None:
        raise ConfigError("give both --from and --to (local days, both included), or neither", key="period")
    return between(date.fromisoformat(first), date.fromisoformat(last), definition.timezone)


def headline(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The figures a manager reads first."""
    figures: dict[str, Any] = {}
    if "volumes" in tables:
        figures["tickets created"] = int(tables["volumes"]["created"].sum())
    if "response_times" in tables:
        times = tables["response_times"]
        every = times[(times["measure"] == "MTTR") & (times["priority"] == "all")]
        figures["MTTR median (business hours)"] = float(every["median_business_h"].iloc[0]) if len(every) else "n/a"
    if "backlog" in tables:
        figures["open backlog"] = int(tables["backlog"]["open"].sum())
        figures["open for 30 days or more"] = int(tables["backlog"]["30d+"].sum())
    if "sla_compliance" in tables:
        sla = tables["sla_compliance"]
        resolution = sla[sla["metric"] == "resolution"]
        ended = int(resolution["met"].sum() + resolution["breached"].sum())
        figures["resolution SLA met"] = f"{100 * resolution['met'].sum() / ended:.1f} %" if ended else "n/a"
    if "sync_health" in tables:
        health = tables["sync_health"]
        figures["dead letters waiting"] = int(health["dead_letters_waiting"].fillna(0).sum())
    if "reopen_rate" in tables:
        figures["reopen rate"] = _overall_percent(tables["reopen_rate"], "reopen_rate_pct")
    if "first_contact_resolution" in tables:
        figures["first-contact resolution"] = _overall_percent(tables["first_contact_resolution"], "fcr_pct")
    return figures


def _overall_percent(frame: pd.DataFrame, column: str) -> str:
    """The `column` of the report's last row, "all" (every ticket), as "12.5 %"; "n/a" when nothing was counted."""
    value = frame[column].iloc[-1] if len(frame) else None
    return "n/a" if value is None or pd.isna(value) else f"{value:.1f} %"


def trained_vectorizer(models: list[ModelSpec]) -> Any:
    """The word TF-IDF of the first configured classifier that loads, for `kb_trends`; None (it fits its own) when
    none does."""
    for spec in models:
        try:
            return TextModel.load(spec.path).word_vectorizer()
        except ModelError as exc:
            get_run_logger().warning(
                "kb_trends: the %s model is not used (%s); words weighed on the period", spec.target, exc
            )
    return None


@flow(name="report")
def report_run(
    name: str, first: str | None = None, last: str | None = None, out: str | None = None, config_path: str | None = None
) -> dict[str, Any]:
    """Run the report definition `name` for its period (or the local days `first` to `last`), into `out` (default:
    its destination). Returns the period, the files written and the headline figures."""
    logger = get_run_logger()
    config = load_hub_config(config_path)
    definition = config.reports.definition(name)
    if definition is None:
        known = ", ".join(d.name for d in config.reports.definitions) or "none defined"
        raise ConfigError(f"no report named {name!r} in reports.definitions (known: {known})", key="reports")
    period = period_of(definition, first, last)
    now = utcnow()
    store = Store(config.database_url.get_secret_value())
    try:
        store.ensure_current()
        reports = dict(REPORTS)
        if "kb_trends" in definition.reports:
            reports["kb_trends"] = partial(kb_trends, vectorizer=trained_vectorizer(config.rules.models))
        folder = Path(out) if out else definition.destination
        with store.connect() as conn:
            tables = {report: reports[report](conn, period, definition.filters, now) for report in definition.reports
                      if report != TICKET_EXPORT}  # fmt: skip
            exported = export_tickets(conn, period, definition.filters, folder, f"{name}_tickets_{period.label}",
                                      definition.formats) if TICKET_EXPORT in definition.reports else []  # fmt: skip
    finally:
        store.dispose()
    written = (
        write_tables(tables, folder, f"{name}_@_{period.label}", definition.formats) if tables else []
    ) + exported
    figures = headline(tables)
    logger.info("%s %s: %d file(s) in %s; %s", name, period.label, len(written), folder, figures)
    rows = "\n".join(f"| {key} | {value} |" for key, value in figures.items())
    files = "\n".join(f"- `{path}`" for path in written)
    create_markdown_artifact(
        key=f"report-{name}",
        markdown=f"# {name}: {period.label}\n\n{period.start:%Y-%m-%d %H:%M} to {period.end:%Y-%m-%d %H:%M} UTC "
        f"({period.zone} days)\n\n| figure | value |\n|---|---|\n{rows}\n\n## Files\n\n{files}\n",
        description=f"Report {name} for {period.label}: headline figures and the files written",
    )
    return {"name": name, "period": period.label, "files": [str(p) for p in written], "headline": figures,
            "rows": {report: len(frame) for report, frame in tables.items()}}  # fmt: skip
