"""`itsm report list / run` as analysts' admins run them: definitions from the config, files in every format read
back (CSV, XLSX with openpyxl, Parquet with pyarrow), written atomically, and the run's artifact."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_cli import itsm

from tests.flows.test_cycle import make_hub, read_artifact

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]

REPORTS = """reports:
  definitions:
    - name: monthly
      period: previous_month
      timezone: Europe/Paris
      formats: [csv, xlsx, parquet]
      destination: out
      schedule: {cron: "0 6 1 * *", timezone: Europe/Paris}
    - name: glpi-only
      reports: [volumes, sync_health]
      formats: [csv]
      filters: {sources: [nowhere]}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, prefect_api: None) -> Path:
    from flows.cycle import hub_cycle

    config = make_hub(tmp_path_factory.mktemp("reports"))
    config.write_text(config.read_text() + REPORTS)
    hub_cycle(config_path=str(config))  # the demo mails become tickets
    return config


def cli(hub: Path, *args: str):
    """`itsm` in a subprocess, on the tests' Prefect API (no temporary server of its own)."""
    from prefect.settings import PREFECT_API_URL

    return itsm(*args, "-c", str(hub), cwd=hub.parent, env={"PREFECT_API_URL": str(PREFECT_API_URL.value())})


def test_report_list_shows_each_definition_and_its_schedule(hub: Path):
    shown = json.loads(cli(hub, "report", "list", "--json").stdout)
    assert [(d["name"], d["schedule"]) for d in shown] == [("monthly", "0 6 1 * * (Europe/Paris)"), ("glpi-only", None)]
    assert shown[0]["reports"] == ["sla_compliance", "response_times", "backlog", "workload", "volumes", "sync_health",
                                   "reopen_rate", "first_contact_resolution", "kb_trends"]  # fmt: skip


def test_report_run_writes_every_format_and_they_read_back(hub: Path):
    today = pd.Timestamp.now(tz="Europe/Paris").date().isoformat()
    done = cli(hub, "report", "run", "monthly", "--from", "2026-01-01", "--to", today, "--json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    label = f"2026-01-01_{today}"
    folder = hub.parent / "out"  # relative to the config file
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        [
            f"monthly_{r}_{label}.{ext}"
            for r in (
                "sla_compliance",
                "response_times",
                "backlog",
                "workload",
                "volumes",
                "sync_health",
                "reopen_rate",
                "first_contact_resolution",
                "kb_trends",
            )
            for ext in ("csv", "parquet")
        ]
        + [f"monthly_{label}.xlsx"]
    )  # no temporary file left behind
    volumes = pd.read_csv(folder / f"monthly_volumes_{label}.csv")
    assert volumes["created"].sum() == result["headline"]["tickets created"] > 0
    backlog = pq.read_table(folder / f"monthly_backlog_{label}.parquet").to_pandas()
    assert backlog["open"].sum() == result["headline"]["open backlog"] > 0
    workbook = openpyxl.load_workbook(folder / f"monthly_{label}.xlsx", read_only=True)
    assert workbook.sheetnames == ["sla_compliance", "response_times", "backlog", "workload", "volumes", "sync_health",
                                   "reopen_rate", "first_contact_resolution", "kb_trends"]  # fmt: skip
    reopens = pd.read_csv(folder / f"monthly_reopen_rate_{label}.csv")
    assert list(reopens.columns) == ["priority", "group", "resolved", "reopened", "reopen_rate_pct"]
    assert reopens.iloc[-1]["priority"] == "all" and reopens.iloc[-1]["resolved"] == reopens["resolved"][:-1].sum()
    header = next(workbook["sync_health"].iter_rows(max_row=1, values_only=True))
    assert header[:3] == ("source", "entity", "fetched")


def test_each_run_leaves_an_artifact_with_the_headline_and_the_files(hub: Path):
    from flows.reports import report_run

    result = report_run("monthly", "2026-01-01", "2026-12-31", str(hub.parent / "again"), config_path=str(hub))
    artifact = read_artifact("report-monthly").data
    assert f"| tickets created | {result['headline']['tickets created']} |" in artifact
    assert all(f"`{path}`" in artifact for path in result["files"])


def test_filters_and_errors(hub: Path):
    done = cli(hub, "report", "run", "glpi-only", "--from", "2026-01-01", "--to", "2026-12-31", "--json",
               "--out", str(hub.parent / "elsewhere"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    assert result["headline"]["tickets created"] == 0  # no ticket came from the source "nowhere"
    assert all(Path(p).parent == hub.parent / "elsewhere" for p in result["files"])
    unknown = cli(hub, "report", "run", "nope")
    assert unknown.returncode == 2 and "no report named 'nope' in reports.definitions (known: monthly" in unknown.stderr
    half = cli(hub, "report", "run", "monthly", "--from", "2026-11-01")
    assert half.returncode == 2 and "give both --from and --to" in half.stderr
    assert cli(hub, "report", "run").returncode == 2
