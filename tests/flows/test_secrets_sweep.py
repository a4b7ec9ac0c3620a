"""Secrets stay secret: every secret of a hub (IMAP password, GLPI user and app tokens, a GLPI token that GLPI
refuses, the SMTP password, a webhook secret) set to a known marker, a full cycle and the status commands run
with debug logging (`itsm --debug`, PREFECT_LOGGING_LEVEL=DEBUG), and then every place a secret could end up is
searched for the markers: the commands' stdout and stderr, the store's database file, the mail the hub sent, and
the Prefect API's logs and artifacts of those runs. Zero hits."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest
from test_cli import ITSM
from test_imap_cycle import message

from simulators.glpi.simulator import GlpiSimulator
from tests.support.dovecot import deliver, running_dovecot
from tests.support.smtp_sink import SmtpSink

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]

SECRETS = {
    "IMAP_PASSWORD": "MRK-imap-5f3a91c0",
    "GLPI_TOKEN": "MRK-glpi-token-8c2e44d1",
    "GLPI_APP_TOKEN": "MRK-glpi-app-1b7d0e52",
    "GLPI_WRONG_TOKEN": "MRK-glpi-wrong-77aa10e3",
    "SMTP_PASSWORD": "MRK-smtp-3d9b22f4",
    "HOOK_SECRET": "MRK-hook-6e1f0095",
}


def test_no_secret_reaches_output_store_mail_logs_or_artifacts(tmp_path: Path):
    from prefect.settings import PREFECT_API_URL

    with (
        running_dovecot(tmp_path / "dovecot", {"helpdesk": SECRETS["IMAP_PASSWORD"]}) as imap,
        GlpiSimulator(tickets=12, seed=3, assets=0, app_token=SECRETS["GLPI_APP_TOKEN"],
                      user_tokens={SECRETS["GLPI_TOKEN"]: "itsm-hub"}) as glpi,
        SmtpSink(credentials=("hub", SECRETS["SMTP_PASSWORD"])) as smtp,
    ):  # fmt: skip
        deliver(imap, message(1, "VPN drops every hour"))
        (tmp_path / "itsm.yaml").write_text(
            "database_url: sqlite:///store.db\n"
            "sources:\n"
            f"  - {{name: helpdesk, kind: imap, host: {imap.host}, port: {imap.port}, security: plain,\n"
            "     username: helpdesk, password: '${IMAP_PASSWORD}'}\n"
            f"  - {{name: glpi, kind: glpi, url: '{glpi.url}', user_token: '${{GLPI_TOKEN}}',\n"
            "     app_token: '${GLPI_APP_TOKEN}', timezone: Europe/Paris}\n"
            f"  - {{name: glpi-refused, kind: glpi, url: '{glpi.url}', user_token: '${{GLPI_WRONG_TOKEN}}',\n"
            "     app_token: '${GLPI_APP_TOKEN}', timezone: Europe/Paris}\n"
            "  - {name: alerts-in, kind: webhook, mapping: webhook_alertmanager,\n"
            "     auth: {scheme: hmac, secret: '${HOOK_SECRET}'}}\n"
            "email:\n"
            "  hub_addresses: [helpdesk@northwind.example]\n"
            f"  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: plain, username: hub,\n"
            "         password: '${SMTP_PASSWORD}', from_address: helpdesk@northwind.example}\n",
            encoding="utf-8",
        )
        env = {**os.environ, **SECRETS, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "200",
               "PREFECT_LOGGING_LEVEL": "DEBUG", "PREFECT_LOGGING_EXTRA_LOGGERS": "itsm"}  # fmt: skip
        env.pop("ITSM_CONFIG", None)

        def itsm(*args: str) -> subprocess.CompletedProcess[str]:
            command = [*ITSM, "--debug", *args, "-c", str(tmp_path / "itsm.yaml")]
            return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

        upgraded = itsm("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr[-2000:]
        cycle = itsm("run")  # fails: glpi-refused is refused (401), and says so
        results = [upgraded, cycle, itsm("sync", "status", "--json"), itsm("tickets", "list"),
                   itsm("sync", "glpi-refused"), itsm("deadletters", "list")]  # fmt: skip
        sent = [received.message.as_bytes() for received in smtp.received]

    assert cycle.returncode == 1 and "glpi-refused" in cycle.stderr
    assert "Traceback" in cycle.stderr + results[4].stderr  # --debug: the whole story is there, minus the secrets
    assert sent, "the hub acknowledged the mail (the SMTP login worked)"
    places = {f"{' '.join(r.args[4:6])} {stream}": text for r in results
              for stream, text in (("stdout", r.stdout), ("stderr", r.stderr))}  # fmt: skip
    for path in sorted(tmp_path.glob("store.db*")):
        places[path.name] = path.read_bytes().decode("latin-1")
    places |= {f"mail {n}": raw.decode("latin-1") for n, raw in enumerate(sent)}
    places |= asyncio.run(prefect_records())
    hits = {(place, name) for place, text in places.items() for name, secret in SECRETS.items() if secret in text}
    assert not hits, f"secrets found: {sorted(hits)}"
    assert any("glpi-refused" in text for name, text in places.items() if name.startswith("logs"))  # logs were read


async def prefect_records() -> dict[str, str]:
    """Every log line and artifact the Prefect API holds (of this test's runs among others)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        logs, offset = [], 0
        while batch := await client.read_logs(limit=200, offset=offset):
            logs += [log.message for log in batch]
            offset += len(batch)
        artifacts = await client.read_artifacts()
    return {"logs of the Prefect API": "\n".join(logs),
            "artifacts": json.dumps([artifact.data for artifact in artifacts], default=str)}  # fmt: skip
