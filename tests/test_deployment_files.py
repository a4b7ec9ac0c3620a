"""docker-compose.yml, the Dockerfile and prefect.yaml fit together (Docker cannot run here: read, don't run)."""

import re
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
    assert set(SERVICES) == {"postgres", "prefect-server", "deploy", "worker"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_dependencies_exist_and_wait_on_health(service):
    for target, rule in SERVICES[service].get("depends_on", {}).items():
        assert target in SERVICES
        assert rule["condition"] in CONDITIONS
        if rule["condition"] == "service_healthy":
            assert "healthcheck" in SERVICES[target], f"{service} waits for {target} to be healthy"
        if rule["condition"] == "service_completed_successfully":
            assert SERVICES[target].get("restart") == "no"


def test_named_volumes_are_declared():
    used = {
        volume.split(":")[0]
        for service in SERVICES.values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == set(COMPOSE["volumes"])
    for volume in (v for s in SERVICES.values() for v in s.get("volumes", []) if v.startswith("./")):
        assert (REPO / volume.split(":")[0]).exists() or volume.startswith("./itsm.yaml"), volume


def test_clients_reach_the_server_and_the_server_its_database():
    for client in ("deploy", "worker"):
        assert env(client)["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert env(client)["ITSM_CONFIG"] == "/etc/itsm/itsm.yaml"
        assert env(client)["PREFECT_API_AUTH_STRING"] == env("prefect-server")["PREFECT_SERVER_API_AUTH_STRING"]
    url = env("prefect-server")["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    assert url.startswith("postgresql+asyncpg://") and "@postgres:5432/prefect" in url
    assert "CREATE DATABASE prefect" in (REPO / "docker/postgres-init/01-prefect-database.sql").read_text()


def test_the_server_runs_the_pinned_prefect_of_the_hub_image():
    """The scheduler's health depends on the Prefect/SQLAlchemy pair: the server must run the tested one."""
    for service in ("prefect-server", "deploy", "worker"):
        assert SERVICES[service].get("build") == ".", service
        assert "image" not in SERVICES[service], service


def test_offline_and_private():
    for service in ("prefect-server", "deploy", "worker"):
        assert env(service)["DO_NOT_TRACK"] == "1"
        assert env(service)["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_no_literal_secrets():
    text = (REPO / "docker-compose.yml").read_text()
    for key in ("POSTGRES_PASSWORD", "PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING", "ITSM_DB_PASSWORD"):
        for value in re.findall(rf"{key}: (.+)", text):
            assert value.startswith("${"), f"{key} must come from .env, not the file"
    url = env("prefect-server")["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    assert ":${ITSM_DB_PASSWORD" in url


def test_the_worker_serves_the_pool_the_deployments_use():
    pools = {d["work_pool"]["name"] for d in PREFECT["deployments"]}
    assert pools == {"itsm-process"}
    assert "--pool" in SERVICES["worker"]["command"]
    assert SERVICES["worker"]["command"][SERVICES["worker"]["command"].index("--pool") + 1] == "itsm-process"
    assert "itsm-process" in " ".join(SERVICES["deploy"]["command"])


def test_deployment_entrypoints_name_a_flow():
    for deployment in PREFECT["deployments"]:
        path, _, function = deployment["entrypoint"].partition(":")
        source = (REPO / path).read_text()
        assert re.search(rf"@flow\(name=\"[a-z-]+\"\)\ndef {function}\(", source), deployment["entrypoint"]
        assert deployment["concurrency_limit"] == 1
        for schedule in deployment["schedules"]:  # an interval in seconds, or a cron line in an explicit zone
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
