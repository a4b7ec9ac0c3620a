"""prefect.yaml is accepted by Prefect itself: `prefect deploy --all` against a real (test) Prefect API."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]
REPO = Path(__file__).resolve().parents[2]


def prefect_cli(*args: str) -> subprocess.CompletedProcess[str]:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "ITSM_HOME": str(REPO)}
    command = [sys.executable, "-m", "prefect", "--no-prompt", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


def test_prefect_deploy_registers_the_scheduled_cycle_retraining_sla_check_and_replay():
    pool = prefect_cli("work-pool", "create", "itsm-process", "--type", "process", "--overwrite")
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deployed = prefect_cli("deploy", "--all")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            names = ("hub-cycle/cycle-5min", "classify-retrain/retrain-weekly", "sla-check/sla-5min")
            names += ("replay-dead-letters/replay-on-demand", "ops-alert/on-trouble", "report/on-demand")
            return [await client.read_deployment_by_name(name) for name in names], await client.read_automations()

    (deployment, retrain, sla, replay, ops, report), automations = asyncio.run(read())
    assert report.entrypoint == "flows/reports.py:report_run" and not report.schedules
    assert ops.entrypoint == "flows/ops_alert.py:ops_alert" and not ops.schedules
    by_name = {automation.name: automation for automation in automations}
    failed_twice, lagging = by_name["hub-cycle failed twice"], by_name["a source lags"]
    assert failed_twice.trigger.expect == {"prefect.flow-run.Failed"} and failed_twice.trigger.threshold == 2
    assert failed_twice.trigger.within.total_seconds() == 660
    assert lagging.trigger.expect == {"itsm.source.lagging"}
    for automation in (failed_twice, lagging):
        (action,) = automation.actions
        assert action.type == "run-deployment" and action.deployment_id == ops.id
    for each in (deployment, retrain, sla, replay, ops, report):
        assert each.job_variables == {"env": {"PREFECT_LOGGING_EXTRA_LOGGERS": "itsm"}}  # hub logs in the UI
    assert replay.entrypoint == "flows/replay.py:replay_dead_letters" and not replay.schedules
    assert deployment.work_pool_name == "itsm-process"
    assert deployment.entrypoint == "flows/cycle.py:hub_cycle"
    (schedule,) = deployment.schedules
    assert schedule.schedule.interval.total_seconds() == 300
    assert deployment.global_concurrency_limit is not None and deployment.global_concurrency_limit.limit == 1
    assert retrain.entrypoint == "flows/retrain.py:classify_retrain"
    (weekly,) = retrain.schedules
    assert (weekly.schedule.cron, weekly.schedule.timezone) == ("0 3 * * 0", "UTC")
    assert sla.entrypoint == "flows/sla.py:sla_check"
    (every,) = sla.schedules
    assert every.schedule.interval.total_seconds() == 300


def test_itsm_report_deploy_gives_the_report_deployment_one_schedule_per_scheduled_definition(tmp_path):
    from prefect.settings import PREFECT_API_URL
    from test_cli import itsm

    assert prefect_cli("work-pool", "create", "itsm-process", "--type", "process", "--overwrite").returncode == 0
    assert prefect_cli("deploy", "--name", "on-demand", "--prefect-file", str(REPO / "prefect.yaml")).returncode == 0
    config = tmp_path / "itsm.yaml"
    env = {"PREFECT_API_URL": str(PREFECT_API_URL.value())}

    def define(*definitions: str) -> None:
        config.write_text("reports:\n  definitions:\n" + "".join(f"    - {d}\n" for d in definitions))

    define("{name: monthly, schedule: {cron: '0 6 1 * *', timezone: Europe/Paris}}",
           "{name: weekly, period: previous_week, schedule: {cron: '0 7 * * 1'}}", "{name: adhoc}")  # fmt: skip
    for _ in range(2):  # run again: the same schedules, not twice as many
        done = itsm("report", "deploy", "-c", str(config), cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
    assert "monthly: 0 6 1 * * (Europe/Paris)" in done.stdout

    from prefect.client.orchestration import get_client

    async def schedules():
        async with get_client() as client:
            report = await client.read_deployment_by_name("report/on-demand")
            return await client.read_deployment_schedules(report.id)

    found = {s.parameters["name"]: s.schedule for s in asyncio.run(schedules())}
    assert set(found) == {"monthly", "weekly"}
    assert (found["monthly"].cron, found["monthly"].timezone) == ("0 6 1 * *", "Europe/Paris")
    define("{name: weekly, period: previous_week, schedule: {cron: '0 7 * * 1'}}")  # monthly removed from the config
    assert itsm("report", "deploy", "-c", str(config), cwd=tmp_path, env=env).returncode == 0
    assert [s.parameters["name"] for s in asyncio.run(schedules())] == ["weekly"]
