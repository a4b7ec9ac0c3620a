"""`itsm report list / run` as analysts' admins run them: definitions from the config, files in every format read
back (CSV, XLSX with openpyxl, Parquet with pyarrow), written atomically, the run's artifact, and the HTML page
opened in a real headless Chromium, the files mailed through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_cli import itsm

from tests.flows.test_cycle import make_hub, read_artifact
from tests.support.chromium import drawn, open_page
from tests.support.net import free_port
from tests.support.smtp_sink import SmtpSink

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.usefixtures("prefect_api"),
    # The SMTP sink offers AUTH over plaintext on loopback on purpose; aiosmtpd warns about exactly that.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

REPORTS = """rules:
  sla:
    policies:
      - {name: standard, targets: {first_response: 4h, resolution: 40h}}
reports:
  definitions:
    - name: monthly
      period: previous_month
      timezone: Europe/Paris
      formats: [csv, xlsx, parquet, html]
      destination: out
      schedule: {cron: "0 6 1 * *", timezone: Europe/Paris}
    - name: glpi-only
      reports: [volumes, sync_health]
      formats: [csv]
      filters: {sources: [nowhere]}
"""
RESOLVED = ("T-000001", "T-000002", "T-000003")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, prefect_api: None) -> Path:
    from flows.cli import tickets_set_status
    from flows.cycle import hub_cycle
    from flows.sla import sla_check
    from itsm_core.models import TicketStatus

    config = make_hub(tmp_path_factory.mktemp("reports"))
    config.write_text(config.read_text() + REPORTS)
    hub_cycle(config_path=str(config))  # the demo mails become tickets
    for ticket in RESOLVED:  # times to resolve, for response_times and its chart
        tickets_set_status(ticket, TicketStatus.RESOLVED, config=str(config))
    sla_check(config_path=str(config))
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
        + [f"monthly_{label}.xlsx", f"monthly_{label}.html"]
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
    page = Path(result["files"][-1])
    assert f"Open the page: [{page.name}]({page.as_uri()})" in artifact


def test_the_html_page_opens_in_headless_chromium_drawn_and_offline(hub: Path, tmp_path: Path):
    from flows.reports import report_run

    result = report_run("monthly", "2026-01-01", "2026-12-31", str(tmp_path / "out"), config_path=str(hub))
    (page,) = (Path(path) for path in result["files"] if path.endswith(".html"))
    seen = open_page(page, tmp_path / "chromium")
    assert seen.requested[0] == page.as_uri()  # the recording sees the page itself ...
    assert [url for url in seen.requested if not url.startswith(("file:", "data:", "about:"))] == []  # ... and no more
    assert seen.svg_count >= 4  # SLA trend, backlog ageing, MTTR by priority, volumes by source
    colours, inked = drawn(seen.screenshot)
    assert colours > 50 and inked > 0.03, (colours, inked)  # text, bars and lines, not a blank page


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


MAILED = """    - name: mailed
      reports: [volumes, backlog, response_times]
      timezone: Europe/Paris
      formats: [html, xlsx, csv, parquet]
      mail_to: [manager@example.org, analyst@example.org]
      mail_subject: "Service review {{{{ first_day }}}} to {{{{ last_day }}}}"
email:
  smtp: {{host: 127.0.0.1, port: {port}, security: plain, username: hub, password: {password},
         from_address: reports@hub.example}}
"""
PASSWORD = "smtp-Secret-4711"


def mailing(hub: Path, port: int) -> Path:
    """The hub's config with the definition `mailed` and the SMTP server on `port` (same store)."""
    config = hub.parent / "mailing.yaml"
    config.write_text(hub.read_text() + MAILED.format(port=port, password=PASSWORD))
    return config


def test_a_definition_with_mail_to_mails_the_headline_and_the_files_attached(hub: Path, tmp_path: Path):
    from flows.reports import report_run

    with SmtpSink(credentials=("hub", PASSWORD)) as sink:
        config = str(mailing(hub, sink.port))
        result = report_run("mailed", "2026-01-01", "2026-12-31", str(tmp_path), config_path=config)
    (received,) = sink.received
    assert received.login == "hub" and received.rcpt_tos == ["manager@example.org", "analyst@example.org"]
    message = received.message
    assert message["Subject"] == "Service review 2026-01-01 to 2026-12-31"
    assert message["From"] == "IT Service Desk <reports@hub.example>" and message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()
    assert "Report mailed: 2026-01-01 to 2026-12-31 (days in Europe/Paris)." in text
    figures = result["headline"]
    assert figures["tickets created"] > 0 and figures["open backlog"] > 0
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert all(f"{label} {value}" in lines for label, value in figures.items()), text
    attached = {part.get_filename(): part for part in message.iter_attachments()}
    assert sorted(attached) == sorted(Path(path).name for path in result["files"])
    types = {name: attached[name].get_content_type() for name in attached}
    label = "2026-01-01_2026-12-31"
    assert types[f"mailed_{label}.html"] == "text/html" and types[f"mailed_volumes_{label}.csv"] == "text/csv"
    assert types[f"mailed_{label}.xlsx"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert types[f"mailed_backlog_{label}.parquet"] == "application/vnd.apache.parquet"
    for name, part in attached.items():  # each attachment is the file written, byte for byte
        assert part.get_payload(decode=True) == (tmp_path / name).read_bytes(), name
    payload = {name: io.BytesIO(part.get_payload(decode=True)) for name, part in attached.items()}
    assert pd.read_csv(payload[f"mailed_volumes_{label}.csv"])["created"].sum() == result["headline"]["tickets created"]
    backlog = pq.read_table(payload[f"mailed_backlog_{label}.parquet"]).to_pandas()
    assert backlog["open"].sum() == result["headline"]["open backlog"]
    sheets = openpyxl.load_workbook(payload[f"mailed_{label}.xlsx"]).sheetnames
    assert sheets == ["volumes", "backlog", "response_times"]
    assert payload[f"mailed_{label}.html"].read().decode().count("<svg") >= 2
    artifact = read_artifact("report-mailed").data
    assert "## Mail\n\nSent to manager@example.org, analyst@example.org." in artifact and PASSWORD not in artifact


def test_a_failed_send_keeps_the_files_fails_the_run_and_says_what_to_check(hub: Path, tmp_path: Path, caplog):
    from flows.reports import report_run

    config = str(mailing(hub, free_port()))  # nobody listens there
    state = report_run("mailed", "2026-01-01", "2026-12-31", str(tmp_path), config_path=config, return_state=True)
    assert state.is_failed()
    assert f"the files are written in {tmp_path} but the mail to manager@example.org, analyst@example.org was not " \
           "sent: cannot connect to the SMTP server 127.0.0.1" in state.message  # fmt: skip
    assert "check email.smtp (host, port, security, credentials)" in state.message
    assert len(list(tmp_path.glob("mailed_*"))) == 8  # html, xlsx, 3 csv, 3 parquet: written all the same
    artifact = read_artifact("report-mailed").data
    assert "**Not sent** to manager@example.org, analyst@example.org: cannot connect" in artifact
    assert all(f"`{path}`" in artifact for path in tmp_path.glob("mailed_*"))

    with SmtpSink(refuse={"analyst@example.org"}, credentials=("hub", PASSWORD)) as sink:
        config = str(mailing(hub, sink.port))
        state = report_run("mailed", "2026-01-01", "2026-12-31", str(tmp_path), config_path=config, return_state=True)
    assert state.is_failed() and "some recipients refused (analyst@example.org: 550)" in state.message
    assert [r.rcpt_tos for r in sink.received] == [["manager@example.org"]]
    shown = state.message + read_artifact("report-mailed").data + caplog.text
    assert PASSWORD not in shown


def test_mail_to_without_smtp_is_refused_naming_the_key(tmp_path: Path):
    (tmp_path / "itsm.yaml").write_text("reports:\n  definitions:\n    - {name: r, mail_to: [boss@example.org]}\n")
    refused = itsm("report", "list", cwd=tmp_path)
    assert refused.returncode == 2
    assert "reports.definitions[0].mail_to: report 'r' mails its files through email.smtp" in refused.stderr
