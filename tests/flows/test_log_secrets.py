"""The hub's log lines reach the Prefect API (PREFECT_LOGGING_EXTRA_LOGGERS=itsm) without the config's secrets."""

import asyncio
import logging

import pytest
from prefect import flow

from flows.runtime import load_hub_config

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]
TOKEN = "glpi-user-token-7d1f0c9a"


@flow(name="log-secrets-probe")
def probe(config_path: str) -> str:
    from prefect.runtime import flow_run

    load_hub_config(config_path)
    logging.getLogger("itsm.connectors.glpi").warning("GLPI answered 401 for user_token %s; check it", TOKEN)
    return flow_run.id


def test_a_secret_quoted_in_a_hub_log_line_reaches_prefect_as_stars(tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    monkeypatch.setenv("GLPI_TOKEN", TOKEN)
    config = tmp_path / "itsm.yaml"
    config.write_text(
        "sources:\n  - {name: glpi, kind: glpi, url: 'https://glpi.example/apirest.php', user_token: '${GLPI_TOKEN}'}\n"
    )
    hub_logger = logging.getLogger("itsm")
    added = not any(isinstance(h, APILogHandler) for h in hub_logger.handlers)
    handler = APILogHandler()
    if added:  # as PREFECT_LOGGING_EXTRA_LOGGERS=itsm does in a worker's run
        hub_logger.addHandler(handler)
    try:
        run_id = probe(str(config))
        handler.flush()
    finally:
        if added:
            hub_logger.removeHandler(handler)

    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
            return [line.message for line in logs if line.name.startswith("itsm")]

    messages = asyncio.run(read())
    assert any("GLPI answered 401 for user_token ***" in m for m in messages), messages
    assert not any(TOKEN in m for m in messages)
