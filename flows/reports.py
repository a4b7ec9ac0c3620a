"""`report`: one report definition of the config for one period: its standard reports computed in the database,
written to its destination in its formats (the HTML page with charts among them), and a Prefect artifact with the
headline figures and the files; then, for a definition with `mail_to`, one mail with the files attached."""

from __future__ import annotations

from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from connectors.mail.outbound import Attachment, OutgoingMail, make_message_id, send_mail
from flows.runtime import load_hub_config
from itsm_core.config import SmtpConfig
from itsm_core.errors import ConfigError, HubError, ModelError, ReportNotMailed, failure_text
from itsm_core.models import utcnow
from itsm_core.reports.export import export_tickets
from itsm_core.reports.files import MEDIA_TYPES, write_page, write_tables
from itsm_core.reports.headline import headline
from itsm_core.reports.html import render_page
from itsm_core.reports.mail import mail_text, render_subject
from itsm_core.reports.period import Period, between, named
from itsm_core.reports.queries import REPORTS, kb_trends, sla_trend
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
            charted = "html" in definition.formats and "sla_compliance" in definition.reports
            trend = sla_trend(conn, period, definition.filters, now) if charted else None
    finally:
        store.dispose()
    written = (
        write_tables(tables, folder, f"{name}_@_{period.label}", definition.formats) if tables else []
    ) + exported
    figures = headline(tables)
    if "html" in definition.formats:
        page = render_page(name, period, now, tables, figures, trend)
        written.append(write_page(page, folder / f"{name}_{period.label}.html"))
    logger.info("%s %s: %d file(s) in %s; %s", name, period.label, len(written), folder, figures)
    rows = "\n".join(f"| {key} | {value} |" for key, value in figures.items())
    files = "\n".join(f"- `{path}`" for path in written)
    pages = [path for path in written if path.suffix == ".html"]
    opening = "".join(f"Open the page: [{path.name}]({path.resolve().as_uri()})\n\n" for path in pages)
    not_mailed = _mail_files(config.email.smtp, definition, period, figures, written) if definition.mail_to else None
    to = ", ".join(definition.mail_to)
    mail = ""
    if definition.mail_to:
        said = f"Sent to {to}." if not_mailed is None else f"**Not sent** to {to}: {not_mailed}"
        mail = f"\n## Mail\n\n{said}\n"
    create_markdown_artifact(
        key=f"report-{name}",
        markdown=f"# {name}: {period.label}\n\n{period.start:%Y-%m-%d %H:%M} to {period.end:%Y-%m-%d %H:%M} UTC "
        f"({period.zone} days)\n\n{opening}| figure | value |\n|---|---|\n{rows}\n\n## Files\n\n{files}\n{mail}",
        description=f"Report {name} for {period.label}: headline figures and the files written",
    )
    if not_mailed is not None:
        logger.error("%s %s: the files are written in %s but not mailed: %s", name, period.label, folder, not_mailed)
        raise ReportNotMailed(
            f"report {name} {period.label}: the files are written in {folder} but the mail to {to} was not sent: "
            f"{not_mailed}; check email.smtp (host, port, security, credentials) and this definition's mail_to, "
            "then run it again"
        )
    return {"name": name, "period": period.label, "files": [str(p) for p in written], "headline": figures,
            "rows": {report: len(frame) for report, frame in tables.items()},
            "mailed_to": definition.mail_to}  # fmt: skip


def _mail_files(
    smtp: SmtpConfig | None, definition: ReportDefinition, period: Period, figures: dict[str, Any], files: list[Path]
) -> str | None:
    """One mail to the definition's `mail_to` through the hub's SMTP server: the headline figures in its text, the
    run's files attached. None once the server took it for every recipient, else why not (never a secret)."""
    assert smtp is not None, "the config refuses mail_to without email.smtp"
    try:
        mail = OutgoingMail(
            to=definition.mail_to,
            subject=render_subject(definition.mail_subject, definition.name, period),
            text=mail_text(definition.name, period, figures, files),
            message_id=make_message_id(smtp.from_address.rpartition("@")[2]),
            attachments=[Attachment(filename=path.name, content=path.read_bytes(), media_type=MEDIA_TYPES[path.suffix])
                         for path in files],
            auto_submitted="auto-generated",
        )  # fmt: skip
        (sent,) = send_mail(smtp, [mail])
    except (HubError, ValueError, OSError) as exc:  # the server unreachable or refusing the login; a bad address
        return failure_text(exc)
    return sent.error  # None, or why the server refused the mail or some of its recipients
