"""Every benchmark still imports and shows its --help: a refactoring must not leave bench/ behind."""

import subprocess
import sys
from pathlib import Path

import pytest

from itsm_core.reports.spec import STANDARD_REPORTS

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (REPO / "bench").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_the_benchmark_runs_its_help(script):
    result = subprocess.run(
        [sys.executable, str(script), "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


@pytest.mark.postgres
def test_the_glpi_benchmark_runs_end_to_end_on_a_small_instance(postgres_url):
    """A tiny run of every phase (full by two writer processes, incremental, no-change, COPY and floor references): a
    benchmark that only fails at its last step after an hour at 100,000 tickets is found here first. Figures are
    not asserted."""
    import json

    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "glpi_sync.py"), "--tickets", "120", "--page-size", "50",
         "--first-load-writers", "2", "--database-url", postgres_url],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["ticket_rows"] == figures["full"]["created"] == figures["copy_rows"] > 0
    for key in (
        "requests_per_ticket",
        "floor_tickets_per_s",
        "hub_to_floor",
        "ratio_hub_to_copy",
        "incremental_steady_s",
        "nochange_steady_s",
        "cpu_bound_tickets_per_s",
    ):
        assert figures[key] > 0, key
    assert figures["incremental_steady"]["fetched"] >= 1  # the schedule's own 1 % change was read
    assert {"hub", "writers", "simulator", "machine", "other", "steal"} <= figures["cpu_ms_per_ticket"].keys()
    assert figures["full"]["writers"] == 2 and figures["writer_peak_rss_mb"] > 0
    assert figures["incremental"]["writers"] == 1  # later runs are written by the flow's own process


@pytest.mark.postgres
def test_the_webhook_benchmark_runs_end_to_end_briefly(postgres_url):
    """Both servers, both loads, the drain of what was landed: one second each. Figures are not asserted."""
    import json

    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "webhooks.py"), "--seconds", "1", "--rate", "50", "--concurrency", "4",
         "--database-url", postgres_url],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["landed"] == figures["tickets_applied"] > 0
    for key in ("accepted_per_s", "floor_accepted_per_s", "ratio_accepted_to_floor", "p99_ms_paced"):
        assert figures[key] > 0, key


@pytest.mark.postgres
def test_the_reports_benchmark_runs_end_to_end_on_a_small_store(postgres_url):
    import json

    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "reports.py"), "--tickets", "3000", "--database-url", postgres_url],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["tickets_in_month"] > 0 and set(figures["format_seconds"]) == {"csv", "xlsx", "parquet"}
    assert set(figures["report_seconds"]) == set(STANDARD_REPORTS)  # every standard report is timed
