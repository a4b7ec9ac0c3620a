"""What a report's mail says: its subject (a definition's jinja2 template) and its text (the headline figures and
the files attached). Sending it is the `report` flow's (flows/reports.py), through the hub's SMTP server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from itsm_core.reports.period import Period

#: The subject of a report's mail unless its definition gives `mail_subject`: a jinja2 template of the definition's
#: `name` and its period's `label`, `first_day`, `last_day` (local days, both included) and `zone`.
DEFAULT_MAIL_SUBJECT = "Report {{ name }}: {{ first_day }} to {{ last_day }} ({{ zone }})"

# Sandboxed: a subject from the config reaches its values and nothing else.
_SUBJECTS = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def render_subject(template: str, name: str, period: Period) -> str:
    """The subject of the mail of `name`'s run for `period`, on one line."""
    days = period.days()
    values = {"name": name, "label": period.label, "first_day": days[0][0], "last_day": days[-1][0],
              "zone": period.zone}  # fmt: skip
    return " ".join(_SUBJECTS.from_string(template).render(values).split())


def check_subject(template: str) -> None:
    """A `ValueError` saying why `template` cannot make a subject (syntax, a name it does not have, two lines)."""
    if "\n" in template or "\r" in template:
        raise ValueError("the subject must be one line")
    sample = {"name": "x", "label": "x", "first_day": "x", "last_day": "x", "zone": "x"}
    try:
        _SUBJECTS.from_string(template).render(sample)
    except TemplateError as exc:
        known = ", ".join(sample)
        raise ValueError(f"not a usable jinja2 template: {exc.message} (it may use {known})") from None


def mail_text(name: str, period: Period, figures: dict[str, Any], files: list[Path]) -> str:
    """The mail's text: the run, its headline figures, the files attached and where they are kept."""
    days = period.days()
    lines = [f"Report {name}: {days[0][0]} to {days[-1][0]} (days in {period.zone}).", "", "Headline figures:"]
    width = max((len(label) for label in figures), default=0)
    lines += [f"  {label.ljust(width)}  {value}" for label, value in figures.items()]
    lines += ["", "Attached:"] + [f"  {path.name}" for path in files]
    if files:
        lines += ["", f"The files are also kept in {files[0].parent}."]
    return "\n".join(lines) + "\n"
