"""The hub-cycle flow end to end on a real Prefect API: sample mail in, tickets, dead letters and artifacts out."""

import asyncio
import io
import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select

from flows.cycle import hub_cycle
from itsm_core.store import Store
from itsm_core.store.quarantine import list_dead_letters
from itsm_core.store.sync_state import get_state
from itsm_core.store.tickets import count_tickets, list_tickets
from tests.support.chromium import drawn, open_page

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]

SAMPLES = sorted(p for p in resources.files("flows.demo").joinpath("mail").iterdir() if p.name.endswith(".eml"))
BAD_SAMPLES = 1  # the demo's scanner PDF is no message, on purpose
REPLIES = 1  # 09 answers 01: a comment on its ticket
AUTOREPLIES = 1  # 10 is an out-of-office: no ticket
CORRUPT = Path(__file__).resolve().parents[1] / "connectors" / "mail" / "fixtures" / "corrupt-binary.eml"


def make_hub(tmp_path: Path, extra_sources: str = "", database_url: str | None = None) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for sample in SAMPLES:
        with resources.as_file(sample) as path:
            shutil.copyfile(path, inbox / sample.name)
    shutil.copyfile(CORRUPT, inbox / "zz-corrupt.eml")
    database_url = database_url or f"sqlite:///{tmp_path / 'store.db'}"
    config = tmp_path / "itsm.yaml"
    config.write_text(
        f"database_url: {database_url}\n"
        "sources:\n"
        "  - {name: helpdesk, kind: maildir, path: inbox, page_size: 3}\n" + extra_sources
    )
    Store(database_url).upgrade()
    return config


def read_artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async def latest():
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                sort=ArtifactSort.CREATED_DESC,
                limit=1,
            )
            return found[0] if found else None

    return asyncio.run(latest())


def test_cycle_makes_tickets_quarantines_the_corrupt_mail_and_repeats_as_a_no_op(tmp_path, database_url):
    config = make_hub(tmp_path, database_url=database_url)
    files = len(SAMPLES) + 1
    bad = BAD_SAMPLES + 1

    first = hub_cycle(config_path=str(config))
    assert first["helpdesk"] == {
        "fetched": files,
        "created": files - bad - REPLIES - AUTOREPLIES,
        "updated": 0,
        "unchanged": 0,
        "commented": REPLIES,
        "ignored": AUTOREPLIES,
        "quarantined": bad,
    }
    store = Store(database_url)
    with store.connect() as conn:
        assert count_tickets(conn) == files - bad - REPLIES - AUTOREPLIES
        letters = list_dead_letters(conn)
        titles = {t["title"] for t in list_tickets(conn, limit=100)}
        state = get_state(conn, "helpdesk", "tickets")
    assert state["last_success_at"] is not None and state["last_success_at"] == state["last_run_at"]
    assert len(letters) == bad
    assert all(x["stage"] == "parse" and x["external_id"].startswith("sha256:") for x in letters)
    reasons = {x["reason"].split(":")[0] for x in letters}
    assert reasons == {"no header fields", "NUL bytes in the header block"}, reasons
    assert all(titles), titles

    summary = read_artifact("hub-cycle-summary")
    assert summary is not None and summary.type == "table"
    (row,) = json.loads(summary.data)
    assert row == {"source": "helpdesk", **first["helpdesk"], "status": "ok"}
    detail = read_artifact("sync-helpdesk")
    assert "## Quarantined" in detail.data and all(f"| {x['id']} |" in detail.data for x in letters)

    second = hub_cycle(config_path=str(config))
    assert second["helpdesk"] == {
        "fetched": files,
        "created": 0,
        "updated": 0,
        "unchanged": files,
        "commented": 0,
        "ignored": 0,
        "quarantined": 0,
    }
    with store.connect() as conn:
        assert count_tickets(conn) == files - bad - REPLIES - AUTOREPLIES
    store.dispose()


def test_a_failing_source_fails_the_cycle_but_not_the_other_sources(tmp_path):
    config = make_hub(tmp_path, "  - {name: gone, kind: maildir, path: no-such-folder}\n")
    state = hub_cycle(config_path=str(config), return_state=True)
    assert state.is_failed()
    assert "gone" in state.message
    with Store(f"sqlite:///{tmp_path / 'store.db'}").connect() as conn:
        gone = get_state(conn, "gone", "tickets")
    assert gone["last_run_at"] is not None and gone["last_success_at"] is None
    with Store(f"sqlite:///{tmp_path / 'store.db'}").connect() as conn:
        assert count_tickets(conn) == len(SAMPLES) - BAD_SAMPLES - REPLIES - AUTOREPLIES


def test_a_cycle_keeps_its_counts_when_the_api_hands_back_a_state_without_data(tmp_path, monkeypatch):
    """Under load the API can answer a state proposal with its own copy of the state, which carries no result
    (seen in CI: MissingResult on a sync that had worked). The cycle must report what its sources did anyway."""
    import prefect.flow_engine

    proposed = prefect.flow_engine.propose_state_sync

    def api_copy(*args, **kwargs):
        state = proposed(*args, **kwargs)
        return state.model_copy(update={"data": None}) if state.is_completed() else state

    monkeypatch.setattr(prefect.flow_engine, "propose_state_sync", api_copy)
    config = make_hub(tmp_path)
    results = hub_cycle(config_path=str(config))
    assert results["helpdesk"]["created"] == len(SAMPLES) - BAD_SAMPLES - REPLIES - AUTOREPLIES


def test_a_glpi_that_is_down_fails_once_per_cycle_and_says_so_where_ops_look(tmp_path):
    """A closed port: the CIs fail after the client's retries, the tickets are skipped (not retried again), the
    source's artifact reads "failed" with the error and the lag, and `sync status` keeps the last error."""
    import time

    from tests.support.net import free_port

    url = f"http://127.0.0.1:{free_port()}/apirest.php"
    source = f"  - {{name: glpi, kind: glpi, url: '{url}', user_token: hub-token-51f0c, retry_attempts: 2}}\n"
    config = make_hub(tmp_path, source)
    started = time.monotonic()
    state = hub_cycle(config_path=str(config), return_state=True)
    elapsed = time.monotonic() - started
    assert state.is_failed() and "glpi" in state.message
    artifact = read_artifact("sync-glpi").data
    assert "failed" in artifact.splitlines()[0] and "## Failed" in artifact
    assert "Configuration items" in artifact and "skipped: glpi did not answer" in artifact
    assert "never synced" in artifact
    with Store(f"sqlite:///{tmp_path / 'store.db'}").connect() as conn:
        cis, tickets = get_state(conn, "glpi", "cis"), get_state(conn, "glpi", "tickets")
    assert "Connection refused" in cis["details"]["last_error"] and "Connection refused" in artifact
    assert tickets["details"]["last_error"].startswith("skipped")
    status = subprocess.run(
        [sys.executable, "-c", "from flows.cli import main; main()", "sync", "status", "-c", str(config), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    errors = {(row["system"], row["entity"]): row["last_error"] for row in json.loads(status.stdout)}
    assert "Connection refused" in errors["glpi", "cis"] and errors["helpdesk", "tickets"] is None
    assert elapsed < 30, f"a dead GLPI cost {elapsed:.0f} s: its backoff was paid more than once"


def test_move_after_import_empties_the_drop_folder(tmp_path):
    config = make_hub(tmp_path)
    text = config.read_text().replace("page_size: 3}", "page_size: 3, after_import: move, move_to: done}")
    config.write_text(text)
    hub_cycle(config_path=str(config))
    assert list((tmp_path / "inbox").iterdir()) == []
    assert len(list((tmp_path / "done").iterdir())) == len(SAMPLES) + 1


def test_demo_twice(tmp_path):
    from flows.demo import run_demo

    first, second = io.StringIO(), io.StringIO()
    run_demo(tmp_path / "demo", Console(file=first, width=160))
    run_demo(tmp_path / "demo", Console(file=second, width=160))
    assert "T-000001" in first.getvalue() and "where to look next" in first.getvalue()
    assert "no new tickets" in second.getvalue()
    assert "no new tickets" not in first.getvalue()
    assert "demo-glpi" in first.getvalue() and "pushed: a comment on T-" in first.getvalue()
    assert "demo-glpi" in second.getvalue() and "pushed to GLPI by the first demo run" in second.getvalue()
    # Solman: an incident set in progress in the hub shows E0002 and the hub's note in the simulator
    assert re.search(r"T-\d+, set in progress in the hub, is Solman incident 8\d+ in status E0002 \(In Process\), "
                     "with the hub's note among its texts", first.getvalue())  # fmt: skip
    assert "pushed to Solman by the first demo run" in second.getvalue()
    from itsm_core.reports.spec import STANDARD_REPORTS

    reports = len(STANDARD_REPORTS)
    files = 2 * reports + 2  # a CSV and a Parquet file per report, one workbook, one page
    assert "reports (" in first.getvalue() and f"{files} files in {tmp_path / 'demo' / 'reports'}" in first.getvalue()
    written = sorted(p.suffix for p in (tmp_path / "demo" / "reports").iterdir())
    assert written == [".csv"] * reports + [".html"] + [".parquet"] * reports + [".xlsx"]  # every one, every format
    (page,) = (tmp_path / "demo" / "reports").glob("*.html")
    seen = open_page(page, tmp_path / "chromium")
    assert seen.requested == [page.as_uri()]  # the demo's page opens offline: nothing else is asked for
    assert seen.svg_count >= 4  # SLA compliance, backlog, time to resolve (the demo's solution), volumes
    colours, inked = drawn(seen.screenshot)
    assert colours > 50 and inked > 0.03, (colours, inked)  # not a blank page
    # An analyst after `make demo`: `itsm report list` shows the schedule, `itsm report run --all` writes it all.
    from prefect.settings import PREFECT_API_URL
    from test_cli import itsm

    api = {"PREFECT_API_URL": str(PREFECT_API_URL.value())}
    demo_config = str(tmp_path / "demo" / "itsm.yaml")
    listed = itsm("report", "list", "-c", demo_config, cwd=tmp_path, env=api)
    assert listed.returncode == 0 and "demo-month" in listed.stdout and "0 6 1 * * (Europe/Paris)" in listed.stdout
    again = itsm("report", "run", "--all", "--out", str(tmp_path / "all"), "-c", demo_config, cwd=tmp_path, env=api)
    assert again.returncode == 0, again.stderr[-800:]
    assert sorted(p.suffix for p in (tmp_path / "all").iterdir()) == written
    from flows.demo import DEMO_COMMENT
    from itsm_core.store.tables import CommentRow

    store = Store(f"sqlite:///{tmp_path / 'demo' / 'itsm.db'}")
    with store.connect() as conn:  # two demo runs, one demo comment
        demo_comments = conn.execute(select(CommentRow.id).where(CommentRow.body == DEMO_COMMENT)).all()
    store.dispose()
    assert len(demo_comments) == 1


def test_a_cycle_pulls_glpi_then_pushes_a_comment_made_at_the_cli_as_a_followup(tmp_path):
    from sqlalchemy import select

    from flows.cli import tickets_comment
    from itsm_core.store.tables import CommentRow, ExternalRefRow
    from simulators.glpi.simulator import HUB_USER_TOKEN, GlpiSimulator

    with GlpiSimulator(tickets=15, seed=5) as sim:
        glpi_id = sim.add_ticket("Badge reader at door 3 is dead")
        source = f"  - {{name: glpi, kind: glpi, url: '{sim.url}', user_token: {HUB_USER_TOKEN}, timezone: UTC}}\n"
        config = make_hub(tmp_path, source)
        visible = sum(1 for row in sim.rows("Ticket") if not row.get("is_template"))
        first = hub_cycle(config_path=str(config))
        assert first["glpi"]["created"] == visible and first["glpi"]["quarantined"] == 0
        assert "glpi" in read_artifact("sync-glpi").data

        refs = ExternalRefRow.__table__
        with Store(f"sqlite:///{tmp_path / 'store.db'}").connect() as conn:
            ticket_id = conn.execute(
                refs.select().with_only_columns(refs.c.ticket_id).where(refs.c.external_id == f"Ticket/{glpi_id}")
            ).scalar_one()
        tickets_comment(str(ticket_id), "On site at 14:00 with a spare reader", private=False, config=str(config))
        second = hub_cycle(config_path=str(config))
        assert second["glpi"]["created"] == 0
        (followup,) = sim.followups(glpi_id, decoded=True)
        assert "On site at 14:00 with a spare reader" in followup["content"]
        rows = {row["target"]: row for row in json.loads(read_artifact("push-outbox-summary").data)}
        assert rows["glpi"]["sent"] == 1 and rows["glpi"]["refused"] == 0

        # The followup comes back with the ticket (GLPI moved its date_mod and last updater): recognised as the
        # hub's own comment, it is not added again, and nothing is pushed back.
        third = hub_cycle(config_path=str(config))
        assert third["glpi"]["created"] == 0
        rows = {row["target"]: row for row in json.loads(read_artifact("push-outbox-summary").data)}
        assert rows["glpi"]["sent"] == 0
        assert len(sim.followups(glpi_id)) == 1
        comments = CommentRow.__table__
        with Store(f"sqlite:///{tmp_path / 'store.db'}").connect() as conn:
            bodies = conn.execute(select(comments.c.body).where(comments.c.ticket_id == ticket_id)).scalars().all()
        assert bodies == ["On site at 14:00 with a spare reader"]


def test_tickets_that_waited_overnight_go_to_the_agent_who_comes_back(tmp_path):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    away = f'[{{start: "{(now - timedelta(days=1)).isoformat()}", end: "{(now + timedelta(days=1)).isoformat()}"}}]'
    rules = (
        "rules:\n"
        "  routing: [{name: all-mail, when: {field: source, equals: email}, group: desk}]\n"
        "  groups: {desk: {agents: [{name: ann@example.org, absences: ABSENT}]}}\n"
    )
    config = make_hub(tmp_path, extra_sources=rules.replace("ABSENT", away))
    hub_cycle(str(config))
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.connect() as conn:
        waiting = list_tickets(conn, limit=100)
    assert waiting and {(t["assignment_group"], t["assignee"]) for t in waiting} == {("desk", None)}

    config.write_text(config.read_text().replace(away, "[]"))  # ann is back
    hub_cycle(str(config))
    with store.connect() as conn:
        assigned = list_tickets(conn, limit=100)
    store.dispose()
    assert {(t["assignment_group"], t["assignee"]) for t in assigned} == {("desk", "ann@example.org")}
