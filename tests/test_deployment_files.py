"""docker-compose.yml, the Dockerfile and prefect.yaml fit together (Docker cannot run here: read, don't run)."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
PREFECT = yaml.safe_load((REPO / "prefect.yaml").read_text())
SERVICES = COMPOSE["services"]
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service]["environment"].items()}


def test_the_topology():
    assert "version" not in COMPOSE  # obsolete in the Compose Specification
    assert set(SERVICES) == {"postgres", "prefect-server", "deploy", "worker", "webhooks"}


def test_the_webhook_receiver_serves_the_compose_config_and_is_watched():
    webhooks = SERVICES["webhooks"]
    assert webhooks["command"][1:4] == ["itsm", "webhooks", "serve"] and "0.0.0.0" in webhooks["command"]
    assert "/healthz" in " ".join(webhooks["healthcheck"]["test"])
    assert env("webhooks")["ITSM_CONFIG"] == "/etc/itsm/itsm.yaml"
    assert webhooks["depends_on"]["deploy"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_dependencies_exist_and_wait_on_health(service):
    for target, rule in SERVICES[service].get("depends_on", {}).items():
        assert target in SERVICES
        assert rule["condition"] in CONDITIONS
        if rule["condition"] == "service_healthy":
            assert "healthcheck" in SERVICES[target], f"{service} waits for {target} to be healthy"
        if rule["condition"] == "service_completed_successfully":
            assert SERVICES[target].get("restart") == "no"


def test_named_volumes_are_declared_and_bind_mounts_exist():
    used = {
        volume.split(":")[0]
        for service in SERVICES.values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == set(COMPOSE["volumes"])
    for volume in (v for s in SERVICES.values() for v in s.get("volumes", []) if v.startswith("./")):
        local = volume.split(":")[0]
        assert (REPO / local).exists() or local in ("./itsm.yaml", "./maildrop"), volume  # made by the operator


def command(service: str) -> str:
    return " ".join(SERVICES[service]["command"])


def test_clients_reach_the_server_and_the_server_its_own_database():
    for client in ("deploy", "worker"):
        assert env(client)["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert env(client)["ITSM_CONFIG"] == "/etc/itsm/itsm.yaml"
        assert env(client)["PREFECT_LOGGING_EXTRA_LOGGERS"] == "itsm"  # the hub's log lines in the UI
        assert 'PREFECT_API_AUTH_STRING="$${PREFECT_AUTH}"' in command(client)
    server = command("prefect-server")
    assert 'PREFECT_SERVER_API_AUTH_STRING="$${PREFECT_AUTH}"' in server
    assert "postgresql+asyncpg://prefect:$${PREFECT_DB_PASSWORD}@postgres:5432/prefect" in server


def test_one_database_role_per_use():
    script = REPO / "docker/postgres-init/01-roles-and-databases.sh"
    init = script.read_text()
    for statement in (
        "CREATE ROLE prefect LOGIN", "CREATE ROLE itsm LOGIN", "CREATE ROLE itsm_reports LOGIN",
        "CREATE DATABASE prefect OWNER prefect", "CREATE DATABASE itsm OWNER itsm",
        "GRANT SELECT ON TABLES TO itsm_reports",
    ):  # fmt: skip
        assert statement in init
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    example = (REPO / "itsm.compose.example.yaml").read_text()
    assert "postgresql+psycopg://itsm:${ITSM_DB_PASSWORD}@postgres:5432/itsm" in example


def test_the_server_runs_the_pinned_prefect_of_the_hub_image():
    """The scheduler's health depends on the Prefect/SQLAlchemy pair: the server must run the tested one."""
    for service in ("prefect-server", "deploy", "worker"):
        assert SERVICES[service].get("build") == ".", service
        assert "image" not in SERVICES[service], service


def test_offline_and_private():
    for service in ("prefect-server", "deploy", "worker"):
        assert env(service)["DO_NOT_TRACK"] == "1"
        assert env(service)["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_secrets_are_files_never_values_in_the_compose_file():
    text = (REPO / "docker-compose.yml").read_text()
    assert not re.search(r"(PASSWORD|AUTH_STRING|SECRET)\w*: (?!/run/secrets/)\S", text)
    declared = COMPOSE["secrets"]
    assert all(spec["file"].startswith("./secrets/") for spec in declared.values())
    used = {name for service in SERVICES.values() for name in service.get("secrets", [])}
    assert used == set(declared)
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    for service in ("prefect-server", "deploy", "worker"):
        assert SERVICES[service]["command"][0] == "docker/with-secrets.sh"


def test_the_secrets_wrapper_exports_each_file_as_a_variable(tmp_path):
    (tmp_path / "itsm_db_password").write_text("s3cret")
    (tmp_path / "prefect_auth").write_text("admin:pw")
    result = subprocess.run(
        ["sh", str(REPO / "docker/with-secrets.sh"), "sh", "-c", "echo $ITSM_DB_PASSWORD $PREFECT_AUTH"],
        env={**os.environ, "SECRETS_DIR": str(tmp_path)}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == "s3cret admin:pw"


def test_every_image_is_pinned():
    assert re.fullmatch(r"postgres:\d+\.\d+(-\w+)?", SERVICES["postgres"]["image"])
    base = re.search(r"^FROM (\S+)", (REPO / "Dockerfile").read_text(), re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base)


def test_the_worker_is_watched_stopped_cleanly_and_keeps_its_data():
    worker = SERVICES["worker"]
    assert "--with-healthcheck" in command("worker") and "8080/health" in " ".join(worker["healthcheck"]["test"])
    assert worker["stop_signal"] == "SIGINT"  # an idle process worker ignores a first SIGTERM
    mounts = {v.split(":")[1] for v in worker["volumes"]}
    assert {"/var/lib/itsm/inbox", "/var/lib/itsm/models", "/var/lib/itsm/results"} <= mounts


def test_run_retention_and_log_rotation():
    server = env("prefect-server")
    assert server["PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"] == "events,flow_runs"
    assert int(server["PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD"]) > 3600
    for name, service in SERVICES.items():
        assert service["logging"]["options"]["max-size"], name


def test_the_worker_serves_the_pool_the_deployments_use():
    pools = {d["work_pool"]["name"] for d in PREFECT["deployments"]}
    assert pools == {"itsm-process"}
    assert "prefect worker start --pool itsm-process" in command("worker")
    assert "itsm-process" in command("deploy")


def test_deployment_entrypoints_name_a_flow():
    for deployment in PREFECT["deployments"]:
        path, _, function = deployment["entrypoint"].partition(":")
        source = (REPO / path).read_text()
        assert re.search(rf"@flow\(name=\"[a-z-]+\"\)\ndef {function}\(", source), deployment["entrypoint"]
        # the hub's own jobs never overlap themselves; workflows run a few tickets at once
        assert deployment["concurrency_limit"] == (4 if "automation" in deployment["tags"] else 1)
        for schedule in deployment.get("schedules", []):  # an interval in seconds, or a cron line in an explicit zone
            assert schedule.get("interval", 0) > 0 or (len(schedule["cron"].split()) == 5 and schedule["timezone"])


def test_the_image_copies_what_exists():
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for name in line.split()[1:-1]:
                assert (REPO / name).exists(), name


def test_the_compose_hub_config_is_valid(monkeypatch):
    from itsm_core.config import load_config

    monkeypatch.setenv("ITSM_DB_PASSWORD", "x")
    config = load_config(REPO / "itsm.compose.example.yaml")
    assert "@postgres:5432/itsm" in config.database_url.get_secret_value()
