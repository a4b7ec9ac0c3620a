"""`itsm report …`: the report definitions of the config, and running them now."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from flows._cli_base import ConfigOption, JsonOption, _config, _fail, _print_json, err, out
from itsm_core.errors import failure_text

report_app = typer.Typer(help="Reports for analysts: SLA compliance, backlog, volumes, sync health as files.")


@report_app.command("list")
def report_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every report definition: its reports, period, formats, destination and schedule."""
    hub = _config(config)
    rows = [
        {"name": d.name, "reports": d.reports, "period": d.period, "timezone": d.timezone, "formats": d.formats,
         "destination": str(d.destination),
         "schedule": f"{d.schedule.cron} ({d.schedule.timezone})" if d.schedule else None}
        for d in hub.reports.definitions
    ]  # fmt: skip
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no report defined: add reports.definitions to the config (README, Reports)", highlight=False)
        return
    table = Table("name", "reports", "period", "formats", "destination", "schedule")
    for row in rows:
        table.add_row(row["name"], ", ".join(row["reports"]), f"{row['period']} ({row['timezone']})",
                      ", ".join(row["formats"]), row["destination"], row["schedule"] or "on demand")  # fmt: skip
    out.print(table)


@report_app.command("run")
def report_run_command(
    name: Annotated[str | None, typer.Argument(help="The definition's name (or --all).")] = None,
    run_all: Annotated[bool, typer.Option("--all", help="Every definition.")] = False,
    first: Annotated[str | None, typer.Option("--from", help="First local day (YYYY-MM-DD), with --to.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last local day, included.")] = None,
    folder: Annotated[str | None, typer.Option("--out", help="Write here instead of the destination.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run report definitions now (a `report` flow run each), for their period or the days given."""
    hub = _config(config)
    if (name is None) == (not run_all):
        _fail("name one report definition, or give --all", code=2)
    names = [d.name for d in hub.reports.definitions] if run_all else [name]
    if not names:
        _fail("no report defined: add reports.definitions to the config", code=2)
    known = ", ".join(d.name for d in hub.reports.definitions) or "none defined"
    for each in names:  # before Prefect starts: a typo costs no flow run
        if hub.reports.definition(str(each)) is None:
            _fail(f"no report named {each!r} in reports.definitions (known: {known})", code=2)
    if (first is None) != (last is None):
        _fail("give both --from and --to (local days, both included), or neither", code=2)
    from flows.reports import report_run

    results: list[dict[str, Any]] = []
    failed = False
    for each in names:
        try:
            results.append(report_run(each, first, last, folder, config_path=config))
        except Exception as exc:
            failed = True
            err.print(f"error: report {each}: {failure_text(exc)}", markup=False)
    if as_json:
        _print_json(results)
    else:
        for result in results:
            figures = ", ".join(f"{k}: {v}" for k, v in result["headline"].items())
            out.print(f"{result['name']} {result['period']}: {figures}", highlight=False)
            for path in result["files"]:
                out.print(f"  {path}", highlight=False)
    if failed:
        raise typer.Exit(1)
