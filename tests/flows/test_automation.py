"""Automation end to end, with every real part: a Prefect server, the project's `ldap-reset` / `ldap-unlock`
deployments (from prefect.yaml) and a process worker running them; Dovecot for the requester's mail, an SMTP sink
for the hub's, OpenLDAP's slapd for the accounts. The hub's cycles run in this process against that server, except
the one killed mid-way, which runs as `itsm run` in a subprocess.

Per test: a fresh store and mailbox, a person of its own in the directory. The worker reads the hub's config
from one file (ITSM_CONFIG) that each test rewrites.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from flows.serve import PrefectServer, prefect_server, prefect_worker
from itsm_core.store import Store
from itsm_core.store.tables import AuditEventRow, AutomationRunRow, CommentRow, OutboxRow, TicketRow
from tests.conftest import REPO
from tests.support.dovecot import ImapServer, deliver, running_dovecot, source_settings
from tests.support.slapd import LdapServer, running_slapd
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.server

HELPDESK = "helpdesk@northwind.example"
ITSM = str(Path(sys.executable).parent / "itsm")


@dataclass
class World:
    server: PrefectServer
    ldap: LdapServer
    sink: SmtpSink
    config: Path  # the worker's ITSM_CONFIG
    folder: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("automation")
    config = folder / "itsm.yaml"
    config.write_text("database_url: sqlite:///unused.db\n")
    with (
        running_slapd(folder / "slapd") as ldap,
        SmtpSink() as sink,
        prefect_server(folder / "prefect") as server,
    ):
        pool = server.cli("work-pool", "create", "itsm-process", "--type", "process", cwd=REPO)
        assert pool.returncode == 0, pool.stdout + pool.stderr
        deployed = server.cli("deploy", "-n", "ldap-reset", "-n", "ldap-unlock", cwd=REPO, ITSM_HOME=str(REPO))
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        with prefect_worker(server, "itsm-process", cwd=REPO, log=folder / "worker.log", ITSM_CONFIG=str(config),
                            ITSM_HOME=str(REPO), PREFECT_WORKER_QUERY_SECONDS="1"):  # fmt: skip
            yield World(server, ldap, sink, config, folder)


@dataclass
class Hub:
    world: World
    imap: ImapServer
    url: str
    requester: str
    dn: str
    password: str

    def cycle(self, *, server: bool = True) -> str:
        """`itsm run` in a process of its own, against the Prefect server (or, `server=False`, on a temporary API
        of its own). Never in this process: Prefect's events worker is one per process and keeps the first API
        it sent to, so in-process flows against this module's server would leave it sending to a dead one."""
        env = self.world.server.env(ITSM_CONFIG=str(self.world.config))
        if not server:
            env.pop("PREFECT_API_URL")
        ran = subprocess.run([ITSM, "run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        return ran.stdout + ran.stderr

    def mail(self, body: str, subject: str = "I forgot my password", **headers: str) -> None:
        message = EmailMessage()
        message["From"] = f"Ann Example <{self.requester}>"
        message["To"] = HELPDESK
        message["Subject"] = subject
        message["Message-ID"] = f"<{uuid.uuid4().hex}@northwind.example>"
        for name, value in headers.items():
            message[name.replace("_", "-")] = value
        message.set_content(body)
        deliver(self.imap, bytes(message))

    def mails(self) -> list[EmailMessage]:
        return [m for m in self.world.sink.messages if m["To"] == self.requester]

    def rows(self, table: Any) -> list[dict[str, Any]]:
        store = Store(self.url)
        try:
            with store.connect() as conn:
                return [dict(r) for r in conn.execute(select(table.__table__)).mappings()]
        finally:
            store.dispose()

    def run(self) -> dict[str, Any]:
        (run,) = self.rows(AutomationRunRow)
        return run

    def ticket(self) -> dict[str, Any]:
        (ticket,) = self.rows(TicketRow)
        return ticket

    def flow_runs(self) -> list[Any]:
        """The flow runs on the server tagged with this hub's ticket T-000001 (each test has its own store, so
        they are told apart by the requester parameter)."""
        runs = read_flow_runs(self.world.server, tag="T-000001")
        return [r for r in runs if r.parameters.get("requester") == self.requester]


def itsm(*args: str) -> subprocess.CompletedProcess[str]:
    command = [ITSM, *args]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}, "COLUMNS": "200"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=REPO)


def read_flow_runs(server: PrefectServer, *, tag: str | None = None, ids: list[str] | None = None) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterTags
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        wanted = FlowRunFilter(
            tags=FlowRunFilterTags(all_=[tag]) if tag else None,
            id=FlowRunFilterId(any_=[uuid.UUID(i) for i in ids]) if ids else None,
        )
        return client.read_flow_runs(flow_run_filter=wanted)


def read_logs(server: PrefectServer, flow_run_id: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        found = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    assert found, "the workflow's run logged nothing to the API"
    return found


def wait_until_ended(hub: Hub, timeout: float = 180) -> Any:
    """The ticket's flow run, once the worker has run it to a final state."""
    deadline = time.monotonic() + timeout
    while True:
        (flow_run,) = read_flow_runs(hub.world.server, ids=[hub.run()["flow_run_id"]])
        if flow_run.state and flow_run.state.is_final():
            return flow_run
        assert time.monotonic() < deadline, f"the run did not end: {flow_run.state}\n" + worker_log(hub.world)
        time.sleep(1)


def worker_log(world: World) -> str:
    return (world.folder / "worker.log").read_text(errors="replace")[-5000:]


@contextmanager
def hub(world: World, tmp_path: Path, rule: dict[str, Any], *, locked: bool = False, person: bool = True,
        url: str | None = None) -> Iterator[Hub]:  # fmt: skip
    """A hub reading a fresh mailbox into a fresh store (SQLite unless `url`), with `rule` its one automation rule;
    the requester has an account in the directory (unless `person` is False)."""
    name = f"u{uuid.uuid4().hex[:8]}"
    requester, password = f"{name}@northwind.example", f"old-{uuid.uuid4().hex[:10]}"
    dn = world.ldap.add_person(name, requester, password, locked=locked) if person else ""
    with running_dovecot(tmp_path / "dovecot", {"helpdesk": "imap-pw"}) as imap:
        url = url or f"sqlite:///{tmp_path / 'store.db'}"
        store = Store(url)
        store.upgrade()
        store.dispose()
        settings = {
            "database_url": url,
            "sources": [source_settings(imap)],
            "email": {"hub_addresses": [HELPDESK], "acknowledge": False,
                      "smtp": {"host": "127.0.0.1", "port": world.sink.port, "security": "plain",
                               "from_address": HELPDESK}},
            "rules": {"classification": [
                {"name": "password", "when": {"field": "text", "contains_any": ["forgot my password", "locked out"]},
                 "set": {"intent": "password_reset"}}]},
            "automation": {"rules": [rule], "directories": {"corp": world.ldap.directory_settings()}},
        }  # fmt: skip
        world.config.write_text(json.dumps(settings))  # JSON is YAML
        yield Hub(world, imap, url, requester, dn, password)


def reset_rule(**changes: Any) -> dict[str, Any]:
    return {
        "name": "reset-password",
        "description": "a new one-time password for your account",
        "when": {"field": "intent", "equals": "password_reset"},
        "min_confidence": 0.8,
        "run_deployment": {
            "name": "reset-password/ldap-reset",
            "parameters": {"ticket": "{{ number }}", "requester": "{{ ticket.requester }}", "directory": "corp"},
        },
        "failure_group": "service-desk",
        **changes,
    }


def one_time_password(mail: EmailMessage) -> str:
    found = re.search(r"one-time password:\s+(\S+)", mail.get_body(("plain",)).get_content())
    assert found, mail.as_string()
    return found.group(1)


def test_a_forgotten_password_is_reset_by_the_workflow_and_the_ticket_resolved(
    world: World, tmp_path: Path, database_url: str
):
    with hub(world, tmp_path, reset_rule(), url=database_url) as h:
        h.mail("Hello, I forgot my password and cannot sign in.")
        h.cycle()  # the ticket, classified; the run recorded and started in the same cycle's push
        run = h.run()
        assert (run["state"], run["rule"], run["deployment"]) == (
            "started",
            "reset-password",
            "reset-password/ldap-reset",
        )
        assert run["parameters"] == {"ticket": "T-000001", "requester": h.requester, "directory": "corp"}
        flow_run = wait_until_ended(h)
        assert flow_run.state.type.value == "COMPLETED", worker_log(world)
        assert {"T-000001", "automation", "rule:reset-password"} <= set(flow_run.tags)
        assert flow_run.parameters == run["parameters"] and flow_run.name == "T-000001-reset-password"

        h.cycle()  # collects the outcome
        ticket, run = h.ticket(), h.run()
        assert (ticket["status"], run["state"], run["flow_run_id"]) == ("resolved", "succeeded", str(flow_run.id))
        (mail,) = h.mails()  # the one mail: the password; no second "resolved" mail
        assert mail["Subject"].startswith("[#T-000001-") and "I forgot my password" in mail["Subject"]
        password = one_time_password(mail)
        assert world.ldap.can_bind(h.dn, password) and not world.ldap.can_bind(h.dn, h.password)

        comments = h.rows(CommentRow)
        solution = [c for c in comments if c["author"] == "automation:reset-password"]
        assert len(solution) == 1 and solution[0]["public"] and solution[0]["body"].startswith("Solution:\n")
        assert "reset-password/ldap-reset completed" in solution[0]["body"]
        assert all(password not in c["body"] for c in comments)
        assert all(password not in json.dumps(r["fields"]) for r in h.rows(OutboxRow))
        assert password not in worker_log(world)
        assert all(password not in line.message for line in read_logs(world.server, flow_run.id))
        assert "a one-time password was mailed to the requester" in solution[0]["body"]  # the run's final message
        audit = [a for a in h.rows(AuditEventRow) if a["field"] == "automation"]
        assert [a["new_value"]["state"] for a in audit] == ["queued", "started", "succeeded"]

        history = json.loads(itsm("automation", "history", "--json", "--config", str(world.config)).stdout)
        assert [(e["ticket"], e["state"], e["flow_run_id"]) for e in history] == [
            ("T-000001", "succeeded", str(flow_run.id))
        ]
        explained = itsm("automation", "explain", "T-000001", "--config", str(world.config)).stdout
        assert "already has its automation (reset-password, succeeded)" in explained and flow_run.name in explained
        shown = json.loads(itsm("tickets", "show", "T-000001", "--json", "--config", str(world.config)).stdout)
        assert shown["automation"]["flow_run_id"] == str(flow_run.id) and shown["automation"]["state"] == "succeeded"

        # Processed again — the requester answers, the ticket reopens, another cycle: no second run, ever.
        h.mail("Thanks, it works.", subject=mail["Subject"], In_Reply_To=mail["Message-ID"])
        h.cycle()
        assert h.ticket()["status"] == "in_progress" and h.run()["state"] == "succeeded"
        assert len(h.flow_runs()) == 1 and len(h.mails()) == 1


def test_a_failing_workflow_sends_the_ticket_back_to_the_group_with_the_reason(world: World, tmp_path: Path):
    with hub(world, tmp_path, reset_rule(), person=False) as h:  # nobody in the directory has the address
        h.mail("I forgot my password.")
        h.cycle()
        flow_run = wait_until_ended(h)
        assert flow_run.state.type.value == "FAILED"
        h.cycle()
        ticket, run = h.ticket(), h.run()
        assert (ticket["status"], ticket["assignment_group"], ticket["assignee"]) == ("new", "service-desk", None)
        assert run["state"] == "failed" and h.requester in run["reason"]
        (note,) = [c for c in h.rows(CommentRow) if c["author"] == "automation:reset-password"]
        assert not note["public"] and run["reason"] in note["body"] and flow_run.name in note["body"]
        assert h.mails() == []  # the requester hears from the agent, not from a failed robot
        shown = itsm("automation", "history", "--state", "failed", "--config", str(world.config)).stdout
        assert "T-000001" in shown and "failed" in shown


def test_the_outcome_lands_after_the_hub_was_killed_between_start_and_end(world: World, tmp_path: Path):
    unlock = reset_rule(
        name="unlock", when={"field": "text", "contains": "locked out"},
        run_deployment={"name": "unlock-account/ldap-unlock",
                        "parameters": {"ticket": "{{ number }}", "requester": "{{ ticket.requester }}",
                                       "directory": "corp"}},
    )  # fmt: skip
    with hub(world, tmp_path, unlock, locked=True) as h:
        h.mail("I am locked out of my account.", subject="Locked out")
        env = world.server.env(ITSM_CONFIG=str(world.config))
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        process = subprocess.Popen([ITSM, "run"], cwd=REPO, env=env, start_new_session=True, **quiet)
        try:
            deadline = time.monotonic() + 120
            while not (h.rows(AutomationRunRow) and h.run()["state"] == "started"):
                assert process.poll() is None and time.monotonic() < deadline, "the run was not started"
                time.sleep(0.05)
        finally:
            os.killpg(process.pid, signal.SIGKILL)  # the hub dies right after the start
            process.wait()
        assert wait_until_ended(h).state.type.value == "COMPLETED", worker_log(world)
        assert world.ldap.can_bind(h.dn, h.password)

        h.cycle()  # a new hub process: it finds the started run in the store
        assert (h.ticket()["status"], h.run()["state"]) == ("resolved", "succeeded")
        (mail,) = h.mails()
        assert "unlocked" in mail.get_body(("plain",)).get_content()
        assert len(h.flow_runs()) == 1


def test_a_start_retried_after_a_crash_before_its_commit_creates_no_second_flow_run(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import flows.automation
    from flows.runtime import load_hub_config

    with hub(world, tmp_path, reset_rule()) as h:
        h.mail("I forgot my password.")
        assert "automation step(s) wait" in h.cycle(server=False)  # recorded and queued, not started
        calls = []
        real_advance = flows.automation.advance

        def crash_once(*args: Any, **kwargs: Any) -> bool:
            calls.append(args)
            if len(calls) == 1:
                raise ConnectionError("the store went away after the flow run was created")
            return real_advance(*args, **kwargs)

        monkeypatch.setattr(flows.automation, "advance", crash_once)
        config, store = load_hub_config(str(world.config)), Store(h.url)
        with temporary_settings({PREFECT_API_URL: world.server.api_url}):
            report, _ = flows.automation.start_runs(store, config)
            assert report.failed == 1 and h.run()["state"] == "queued"
            assert len(h.flow_runs()) == 1  # created, not recorded
            with store.transaction() as conn:  # the retry is due now instead of after the backoff
                conn.execute(OutboxRow.__table__.update().values(next_attempt_at=OutboxRow.__table__.c.created_at))
            report, _ = flows.automation.start_runs(store, config)
        store.dispose()
        assert report.sent == 1
        (flow_run,) = h.flow_runs()
        assert h.run()["flow_run_id"] == str(flow_run.id)
        wait_until_ended(h)
        h.cycle()
        assert h.ticket()["status"] == "resolved" and len(h.mails()) == 1


def test_explain_says_why_no_rule_matched(world: World, tmp_path: Path):
    with hub(world, tmp_path, reset_rule(min_confidence=0.8)) as h:
        h.mail("My printer jams.", subject="Printer")
        h.cycle()
        assert h.rows(AutomationRunRow) == []
        explained = itsm("automation", "explain", "T-000001", "--config", str(world.config))
        assert explained.returncode == 0, explained.stderr
        assert "reset-password: its condition does not hold" in explained.stdout
        assert "no automation for this ticket" in explained.stdout


def test_with_ask_nothing_runs_until_the_requester_confirms(world: World, tmp_path: Path):
    with hub(world, tmp_path, reset_rule(approval="ask")) as h:
        h.mail("I forgot my password again.")
        h.cycle()
        (question,) = h.mails()
        assert "Reply to this message with YES" in question.get_body(("plain",)).get_content()
        assert h.run()["state"] == "asked" and h.flow_runs() == []
        (asked,) = [c for c in h.rows(CommentRow) if c["author"] == "automation:reset-password"]
        assert asked["public"]

        h.mail("I will think about it.\n", subject=question["Subject"], In_Reply_To=question["Message-ID"])
        h.cycle()
        assert h.run()["state"] == "asked" and h.flow_runs() == []  # not an answer

        h.mail("Yes\n\n> Reply to this message with YES ...", subject=question["Subject"],
               In_Reply_To=question["Message-ID"])  # fmt: skip
        h.cycle()
        assert h.run()["state"] == "started"
        wait_until_ended(h)
        h.cycle()
        assert (h.ticket()["status"], h.run()["state"]) == ("resolved", "succeeded")
        assert len(h.flow_runs()) == 1
        password = one_time_password(h.mails()[-1])
        assert world.ldap.can_bind(h.dn, password)


def test_a_deployment_that_does_not_exist_hands_the_ticket_to_an_agent(world: World, tmp_path: Path):
    rule = reset_rule(run_deployment={"name": "reset-password/not-deployed", "parameters": {}})
    with hub(world, tmp_path, rule) as h:
        h.mail("I forgot my password.")
        h.cycle()
        run, ticket = h.run(), h.ticket()
        assert run["state"] == "failed" and "no deployment reset-password/not-deployed" in run["reason"]
        assert "prefect deploy -n not-deployed" in run["reason"]
        assert (ticket["status"], ticket["assignment_group"]) == ("new", "service-desk")
        (letter,) = [r for r in h.rows(OutboxRow) if r["target_system"] == "automation"]
        assert letter["state"] == "dead"


def test_an_unreachable_prefect_api_is_retried_later_and_starts_nothing(world: World, tmp_path: Path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import flows.automation
    from flows.runtime import load_hub_config
    from tests.support.net import free_port

    with hub(world, tmp_path, reset_rule()) as h:
        h.mail("I forgot my password.")
        h.cycle(server=False)  # recorded and queued; then the start meets a Prefect that is down
        store = Store(h.url)
        with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{free_port()}/api"}):
            report, _ = flows.automation.start_runs(store, load_hub_config(str(world.config)))
        store.dispose()
        assert (report.sent, report.failed) == (0, 1)
        (step,) = [r for r in h.rows(OutboxRow) if r["target_system"] == "automation"]
        assert (step["state"], step["attempts"]) == ("pending", 1) and step["last_error"]
        assert h.run()["state"] == "queued"


def test_without_a_prefect_server_the_steps_wait_and_say_why(tmp_path: Path):
    (tmp_path / "inbox").mkdir()
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "ann@northwind.example", HELPDESK, "I forgot my password"
    message["Message-ID"] = "<forgot-1@northwind.example>"
    message.set_content("Please help.")
    (tmp_path / "inbox" / "1.eml").write_bytes(bytes(message))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    settings = {
        "database_url": url, "sources": [{"name": "drop", "kind": "maildir", "path": str(tmp_path / "inbox")}],
        "rules": {"classification": [{"name": "password", "when": {"field": "text", "contains": "forgot my password"},
                                      "set": {"intent": "password_reset"}}]},
        "automation": {"rules": [reset_rule()]},
    }  # fmt: skip
    config = tmp_path / "itsm.yaml"
    config.write_text(json.dumps(settings))
    Store(url).upgrade()
    ran = itsm("run", "--config", str(config))  # `itsm run` on its temporary Prefect API
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "1 automation step(s) wait: workflows run on a Prefect server" in ran.stdout + ran.stderr
    store = Store(url)
    with store.connect() as conn:
        (run,) = conn.execute(select(AutomationRunRow.state, AutomationRunRow.flow_run_id)).all()
        (step,) = conn.execute(
            select(OutboxRow.state, OutboxRow.attempts).where(OutboxRow.target_system == "automation")
        )
    store.dispose()
    assert tuple(run) == ("queued", None) and tuple(step) == ("pending", 0)
