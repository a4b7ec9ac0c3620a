"""The `reports:` section: named definitions of what to export, for which period, in which formats, where.

```yaml
reports:
  definitions:
    - name: monthly-service-review
      reports: [sla_compliance, response_times, backlog]   # default: every standard report
      period: previous_month        # previous_month | previous_week | previous_day | month_to_date
      timezone: Europe/Paris        # where the period's days begin (default UTC)
      formats: [html, xlsx, csv]    # html: one page, headline figures and charts first; xlsx: one workbook, a
                                    # sheet per report; csv and parquet: a file per report
      destination: /srv/reports     # relative paths: to the config file
      filters: {sources: [glpi-prod], groups: [network-team]}
      schedule: {cron: "0 6 1 * *", timezone: Europe/Paris}    # `itsm report deploy` makes it a Prefect schedule
      mail_to: [service-managers@example.org]   # the files, attached, through email.smtp after each run
      mail_subject: "Service review {{ first_day }} to {{ last_day }}"   # jinja2; default: DEFAULT_MAIL_SUBJECT
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from itsm_core.models import ZoneName
from itsm_core.reports.mail import DEFAULT_MAIL_SUBJECT, check_subject

#: The standard reports, in the order files and sheets list them (docs: docs/REPORTS.md).
STANDARD_REPORTS = ("sla_compliance", "response_times", "backlog", "workload", "volumes", "sync_health",
                    "reopen_rate", "first_contact_resolution", "kb_trends")  # fmt: skip
ReportType = Literal["sla_compliance", "response_times", "backlog", "workload", "volumes", "sync_health",
                     "reopen_rate", "first_contact_resolution", "kb_trends", "ticket_export"]  # fmt: skip
#: Asked for by name only (not in the default list): the row-level export of the period's tickets (export.py).
TICKET_EXPORT = "ticket_export"
Format = Literal["csv", "xlsx", "parquet", "html"]
PeriodName = Literal["previous_month", "previous_week", "previous_day", "month_to_date"]
# A plain addr-spec: something@domain, no blanks or brackets (no display name, no header injection).
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReportFilters(_Strict):
    """Which tickets count (each list: any of them; empty: all)."""

    sources: list[str] = Field(default_factory=list, description="the source (system) a ticket came from")
    categories: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list, description="the assignment group")
    tenants: list[str] = Field(default_factory=list)


class ReportSchedule(_Strict):
    cron: str = Field(pattern=r"^\S+ \S+ \S+ \S+ \S+$", description="five fields: minute hour day month weekday")
    timezone: ZoneName = "UTC"


class ReportDefinition(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    reports: list[ReportType] = Field(default_factory=lambda: list(STANDARD_REPORTS), min_length=1)
    period: PeriodName = "previous_month"
    timezone: ZoneName = "UTC"
    formats: list[Format] = Field(default_factory=lambda: ["xlsx", "csv"], min_length=1)
    destination: Path = Path("reports")
    filters: ReportFilters = Field(default_factory=ReportFilters)
    schedule: ReportSchedule | None = None
    mail_to: list[str] = Field(default_factory=list, description="mail the files here after each run (email.smtp)")
    mail_subject: str = Field(default=DEFAULT_MAIL_SUBJECT, description="a jinja2 template (DEFAULT_MAIL_SUBJECT)")

    @field_validator("mail_to")
    @classmethod
    def _addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not _ADDRESS.match(address):
                raise ValueError(f"{address!r} is not an e-mail address (one plain address per item: a@example.org)")
        return addresses

    @field_validator("mail_subject")
    @classmethod
    def _subject_template(cls, subject: str) -> str:
        check_subject(subject)
        return subject

    def anchored(self, base_dir: Path) -> Self:
        folder = self.destination if self.destination.is_absolute() else base_dir / self.destination
        return self.model_copy(update={"destination": folder})


class ReportsConfig(_Strict):
    definitions: list[ReportDefinition] = Field(default_factory=list)

    @field_validator("definitions")
    @classmethod
    def _unique(cls, definitions: list[ReportDefinition]) -> list[ReportDefinition]:
        names = [d.name for d in definitions]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} defined twice; names must be unique")
        return definitions

    def definition(self, name: str) -> ReportDefinition | None:
        return next((d for d in self.definitions if d.name == name), None)
