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
    """Every report definition: its reports, period, formats, destination, schedule and who gets the files by mail."""
    hub = _config(config)
    rows = [
        {"name": d.name, "reports": d.reports, "period": d.period, "timezone": d.timezone, "formats": d.formats,
         "destination": str(d.destination),
         "schedule": f"{d.schedule.cron} ({d.schedule.timezone})" if d.schedule else None, "mail_to": d.mail_to}
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


#: The deployment prefect.yaml ships for reports; `itsm report deploy` gives it the definitions' schedules.
REPORT_DEPLOYMENT = "report/on-demand"
SLUG = "report-"


@report_app.command("deploy")
def report_deploy(config: ConfigOption = None) -> None:
    """Give the `report/on-demand` deployment one schedule per report definition that has one (parameters: its
    name), replacing those it had from earlier definitions. Run it after `prefect deploy --all` and after editing
    `reports.definitions`; needs PREFECT_API_URL (a Prefect server)."""
    import asyncio

    hub = _config(config)
    scheduled = [d for d in hub.reports.definitions if d.schedule is not None]
    try:
        done = asyncio.run(_sync_schedules(scheduled))
    except Exception as exc:
        _fail(f"cannot schedule the reports: {failure_text(exc)} (run `prefect deploy --all` first, with "
              "PREFECT_API_URL naming the server)")  # fmt: skip
    for line in done:
        out.print(line, highlight=False)
    if not scheduled:
        out.print("no report definition has a schedule: nothing scheduled (run them with `itsm report run`)")


async def _sync_schedules(definitions: list[Any]) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule

    async with get_client() as client:
        deployment = await client.read_deployment_by_name(REPORT_DEPLOYMENT)
        for schedule in await client.read_deployment_schedules(deployment.id):
            if (schedule.slug or "").startswith(SLUG):
                await client.delete_deployment_schedule(deployment.id, schedule.id)
        lines = []
        for definition in definitions:
            cron = CronSchedule(cron=definition.schedule.cron, timezone=definition.schedule.timezone)
            await client.create_deployment_schedules(
                deployment.id,
                [DeploymentScheduleCreate(schedule=cron, active=True, parameters={"name": definition.name},
                                          slug=f"{SLUG}{definition.name}")],
            )  # fmt: skip
            lines.append(f"{definition.name}: {definition.schedule.cron} ({definition.schedule.timezone})")
        return lines
