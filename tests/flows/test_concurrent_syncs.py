"""Two `itsm sync` of one source started at the same moment on one PostgreSQL store (two schedulers, or two
workers that picked up the same deployment): one pulls, the other stops at once with one clear line, "already
being synced", and no traceback; the store holds each GLPI ticket once. And an upstream's refusal reads as one
line too: the traceback only with `itsm --debug`."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest
from sqlalchemy import func, select
from test_cli import ITSM

from itsm_core.store.tables import ExternalRefRow, TicketRow
from simulators.glpi.simulator import GlpiSimulator
from tests.support.glpi import GlpiHub

pytestmark = [pytest.mark.postgres, pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]


def test_two_syncs_of_one_source_at_once_pull_it_once_and_the_second_says_so(tmp_path, postgres_url):
    from prefect.settings import PREFECT_API_URL

    # 60 tickets by pages of 2, each answer 100 ms late: the first sync takes seconds, so the two overlap.
    with GlpiSimulator(tickets=60, seed=11, assets=0, latency_ms=100) as sim:
        hub = GlpiHub.start(sim, postgres_url, tmp_path, page_size=2)
        env = {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "200"}
        start = threading.Barrier(2)
        done: list[subprocess.CompletedProcess[str]] = []

        def sync() -> None:
            start.wait()
            done.append(
                subprocess.run([*ITSM, "sync", "glpi", "-c", str(tmp_path / "itsm.yaml")], cwd=tmp_path,
                               env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
            )  # fmt: skip

        runs = [threading.Thread(target=sync) for _ in range(2)]
        for run in runs:
            run.start()
        for run in runs:
            run.join(320)
        pulled = [r for r in done if r.returncode == 0]
        refused = [r for r in done if r.returncode != 0]
        assert len(pulled) == 1 and len(refused) == 1, [(r.returncode, r.stderr[-800:]) for r in done]
        assert refused[0].returncode == 1
        assert "glpi is already being synced by another run" in refused[0].stderr
        assert "Traceback" not in refused[0].stderr
        with hub.store.connect() as conn:
            tickets = conn.execute(select(func.count()).select_from(TicketRow.__table__)).scalar_one()
            refs = ExternalRefRow.__table__
            linked = select(refs.c.external_id).where(refs.c.ticket_id.is_not(None))
            links = conn.execute(linked).scalars().all()
        assert tickets == len(links) == len(set(links)) == len(sim.rows("Ticket"))  # the trashed one included
        hub.store.dispose()


def test_glpi_refusing_the_login_is_one_clear_line_and_a_traceback_only_with_debug(tmp_path):
    from prefect.settings import PREFECT_API_URL

    with GlpiSimulator(tickets=3, seed=2, assets=0) as sim:
        (tmp_path / "itsm.yaml").write_text(
            f"database_url: sqlite:///store.db\nsources:\n  - {{name: g, kind: glpi, url: '{sim.url}', "
            "user_token: not-the-token}\n"
        )
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "200"}

        def sync(*options: str) -> subprocess.CompletedProcess[str]:
            command = [*ITSM, *options, "sync", "g", "-c", str(tmp_path / "itsm.yaml")]
            return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)

        assert subprocess.run([*ITSM, "db", "upgrade"], cwd=tmp_path, env=env, timeout=60).returncode == 0
        quiet, loud = sync(), sync("--debug")
    for result in (quiet, loud):
        assert result.returncode == 1
        assert [line for line in result.stderr.splitlines() if line.startswith("error: g")], result.stderr[-600:]
    assert "Traceback" not in quiet.stderr, quiet.stderr[-2000:]
    assert "Traceback" in loud.stderr
