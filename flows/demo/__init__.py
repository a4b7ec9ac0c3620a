"""`itsm demo`: the whole cycle on bundled sample mail, a simulated GLPI and a simulated SAP Solution Manager,
offline, in a folder of its own.

The folder keeps a real config (`itsm.yaml`), a real drop folder (`inbox/`) and a SQLite store, so what the
demo shows can be explored afterwards with the ordinary commands. GLPI and Solman are the bundled simulators
(`simulators/glpi/`, `simulators/solman/`), serving generated tickets and incidents on loopback while the demo
runs; each starts afresh (from its seed) at every demo run.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from itsm_core.store import Store
    from simulators.glpi.simulator import GlpiSimulator
    from simulators.solman.simulator import SolmanSimulator

DEMO_CONFIG = """\
# Written by `itsm demo` at each run (the simulated GLPI gets a new port). A real config: copy it as a start.
database_url: sqlite:///itsm.db      # relative to this file
sources:
  - name: demo-mailbox
    kind: maildir
    path: inbox                      # drop more .eml files here, then run `itsm demo` again
  - name: demo-glpi
    kind: glpi                       # both ways: tickets in, the hub's status, assignment and comments out
    url: {glpi_url}
    user_token: {glpi_token}   # the simulator's public demo token; a real one goes in ${{GLPI_TOKEN}}
    timezone: Europe/Paris
  - name: demo-solman
    kind: solman                     # SAP Solution Manager through ICT: incidents in, statuses and notes out
    url: {solman_url}
    user: {solman_user}
    password: {solman_password}      # the simulator's public demo password; a real one goes in ${{SOLMAN_PASSWORD}}
calendars:
  office: {{timezone: Europe/Paris, hours: {{mon-fri: ["08:30-18:00"]}}, holidays: [{{country: FR}}]}}
  berlin: {{timezone: Europe/Berlin, hours: {{mon-fri: ["08:00-17:00"]}}, holidays: [{{country: DE, subdivision: BE}}]}}
  krakow: {{timezone: Europe/Warsaw, hours: {{mon-fri: ["08:00-16:00"]}}, holidays: [{{country: PL}}]}}
rules:                               # every ticket, from either source: classified, prioritised, routed
  classification:                    # in order; `itsm rules explain T-000001` shows which rule set what
    - name: vpn
      when: {{field: text, contains_any: [vpn, anyconnect]}}
      set: {{category: network, intent: vpn_access}}
    - name: printers-and-scanners
      when: {{field: text, contains_any: [printer, drucker, imprimante, skaner, scanner]}}
      set: {{category: printing}}
    - name: access
      when: {{field: text, contains_any: [password, passwort, zugriff, accès, access, login, berechtigung]}}
      set: {{category: access}}
    - name: hardware
      when: {{field: text, contains_any: [laptop, notebook, display, monitor, bildschirm, écran]}}
      set: {{category: hardware}}
    - name: outage-words              # an urgency cue: raises the priority through the ITIL matrix
      when: {{field: text, regex: '\\b(down|ausfall|panne|all users|alle)\\b'}}
      set: {{urgency: 1}}
  routing:                           # mail only here: GLPI's own people assign its tickets
    - name: mail-network
      when: {{all: [{{field: source, equals: email}}, {{field: category, equals: network}}]}}
      group: network-team
      skills: [vpn]
    - {{name: mail-other, when: {{field: source, equals: email}}, group: service-desk}}
  groups:                            # an agent is picked by skills, then least load, then round-robin
    network-team: {{agents: [{{name: ana@example.org, skills: [vpn]}}, {{name: ben@example.org}}]}}
    service-desk: {{agents: [{{name: chloe@example.org}}, {{name: dan@example.org}}]}}
  sla:                               # clocks in office hours, from each ticket's history (`itsm sla explain`)
    policies:
      - {{name: urgent, when: {{field: priority, lte: 2}}, calendar: office,
         targets: {{first_response: 30m, resolution: 8h}}}}
      - {{name: finance, when: {{field: requester_groups, contains: Finance}}, calendar: office,
         targets: {{first_response: 1h, resolution: 16h}}}}   # GLPI's requester group
      - {{name: standard, targets: {{first_response: 4h, resolution: 40h}}}}   # in the site's own hours:
    tenant_calendars: {{"Root entity > Berlin": berlin, "Root entity > Kraków": krakow, "Root entity > Paris": office}}
    default_calendar: office
reports:                             # `itsm report run demo-month`; the demo writes it at each run
  definitions:
    - name: demo-month
      period: month_to_date
      timezone: Europe/Paris
      formats: [html, xlsx, csv, parquet]   # html: one page, headline figures and charts first
      destination: reports           # relative to this file
      schedule: {{cron: "0 6 1 * *", timezone: Europe/Paris}}   # `itsm report deploy` on a Prefect server
"""
#: Tickets in the simulated GLPI and incidents in the simulated Solman: generated from these seeds, the same
#: all day.
DEMO_GLPI_TICKETS = 60
DEMO_GLPI_SEED = 2026
DEMO_SOLMAN_INCIDENTS = 8


def run_demo(directory: Path, console: Console) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    inbox = directory / "inbox"
    copied = copy_samples(inbox)
    console.print(f"demo folder: {directory.resolve()}  ({copied} sample mails copied to {inbox})", highlight=False)
    console.print(
        f"starting a simulated GLPI with {DEMO_GLPI_TICKETS} generated tickets and a simulated SAP Solution Manager "
        f"with {DEMO_SOLMAN_INCIDENTS} incidents on loopback…"
    )
    config_file = directory / "itsm.yaml"
    with demo_upstreams(config_file) as (glpi, solman):
        _run_cycle(directory, config_file, glpi, solman, console)


@contextmanager
def demo_upstreams(config_file: Path) -> Iterator[tuple[GlpiSimulator, SolmanSimulator]]:
    """The demo's simulated GLPI and Solution Manager, serving while the block runs, and `config_file` written to
    read them (their ports change at every start)."""
    from connectors.solman._ict import system_guid
    from simulators.glpi.simulator import HUB_USER_TOKEN, GlpiSimulator
    from simulators.solman.simulator import SolmanSimulator

    # Solman's clock stands still at this morning's 07:00 UTC: the same incidents, to the second, all day long
    morning = datetime.now(UTC).replace(hour=7, minute=0, second=0, microsecond=0)
    with (
        GlpiSimulator(tickets=DEMO_GLPI_TICKETS, seed=DEMO_GLPI_SEED) as glpi,
        SolmanSimulator(seed=DEMO_GLPI_SEED, clock=lambda: morning) as solman,
    ):
        solman.forward_to = system_guid("demo-solman")  # as Solman's admin registers the hub's GUID
        solman.populate(DEMO_SOLMAN_INCIDENTS)
        text = DEMO_CONFIG.format(
            glpi_url=glpi.url, glpi_token=HUB_USER_TOKEN, solman_url=solman.origin,
            solman_user=solman.user, solman_password=solman.password,
        )  # fmt: skip
        config_file.write_text(text, encoding="utf-8")
        yield glpi, solman


def _run_cycle(
    directory: Path, config_file: Path, glpi: GlpiSimulator, solman: SolmanSimulator, console: Console
) -> None:
    from flows.cycle import hub_cycle
    from itsm_core.store import Store
    from itsm_core.store.quarantine import count_dead_letters
    from itsm_core.store.tickets import count_tickets, format_ticket_id, list_tickets

    store = Store(f"sqlite:///{(directory / 'itsm.db').resolve()}")
    store.upgrade()
    with store.connect() as conn:
        before = count_tickets(conn)

    console.print("running the hub-cycle flow on a temporary local Prefect API (the first run takes longer)…")
    started = time.perf_counter()
    results = hub_cycle(config_path=str(config_file))
    elapsed = time.perf_counter() - started

    columns = ("fetched", "created", "updated", "unchanged", "commented", "ignored", "quarantined")
    table = Table("source", *columns, title="what the cycle did")
    for source in ("demo-mailbox", "demo-glpi", "demo-solman"):
        counts = results.get(source)
        table.add_row(source, *(str(counts[k]) for k in columns) if isinstance(counts, dict) else [str(counts)])
    console.print(table)
    console.print(f"cycle finished in {elapsed:.1f} s", highlight=False)
    _show_push(store, config_file, glpi, console)
    _show_solman(store, config_file, solman, console)
    _show_sla(config_file, console)
    _show_solution(store, config_file, console)
    _show_reports(config_file, console)

    with store.connect() as conn:
        total = count_tickets(conn)
        newest = list_tickets(conn, source_type="email", limit=9)
        waiting = count_dead_letters(conn)
    tickets = Table(title=f"{total} tickets in the store; those from mail, as the rules classified and routed them")
    tickets.add_column("ticket", no_wrap=True)
    tickets.add_column("prio", no_wrap=True)
    tickets.add_column("category", no_wrap=True)
    tickets.add_column("assigned to", no_wrap=True)
    tickets.add_column("title", no_wrap=True, overflow="ellipsis", max_width=50)
    for row in newest:
        assigned = " / ".join(x for x in (row["assignment_group"], row["assignee"]) if x)
        tickets.add_row(
            format_ticket_id(row["id"]), str(row["priority"]), row["category"] or "-", assigned, row["title"]
        )
    console.print(tickets)
    if total == before:
        console.print("no new tickets: everything was already in the store (the hub never imports a record twice)")
    c = f"-c {config_file}"
    console.print(
        "\nwhere to look next (the itsm command is in .venv/bin):\n"
        f"  itsm tickets list {c}            all tickets; --json for scripts\n"
        f"  itsm tickets show T-000001 {c}   one ticket, its attachments and history\n"
        f"  itsm rules explain T-000001 {c}  why it got its category, priority and assignee\n"
        f"  itsm sla explain T-000001 {c}    how its SLA clock was counted; `itsm sla due` what breaches next\n"
        f"  itsm deadletters list {c}        {waiting} record(s) quarantined, with the reason\n"
        f"  itsm sync status {c}             per source: watermark, lag, outbox, dead letters\n"
        f"  itsm report run --all {c}        the standard reports again (HTML, XLSX, CSV, Parquet in reports/)\n"
        "  itsm demo                        the cycle again: nothing is imported twice\n"
        "  make serve                       the same data under a Prefect server and worker: the UI on :4200\n"
        "  README.md, 'Operating it with Prefect': a server, a worker, runs and artifacts in the Prefect UI",
        highlight=False,
        soft_wrap=True,
    )
    store.dispose()


def _show_sla(config_file: Path, console: Console) -> None:
    """The SLA check the `sla-check` deployment runs every 5 minutes, once."""
    from flows.sla import sla_check

    result = sla_check(config_path=str(config_file))
    states = ", ".join(f"{n} {state}" for state, n in sorted(result["clocks"].items()))
    console.print(
        f"SLA check: {result['tickets']} tickets, clocks {states}; {result['fired']} warning(s), breach(es) and "
        "escalation(s) fired this run (each fires once per ticket; GLPI's generated tickets are weeks old)",
        highlight=False,
    )


DEMO_SOLUTION = "Replaced the faulty network cable (the demo's solution, pushed to GLPI)."


def _show_solution(store: Store, config_file: Path, console: Console) -> None:
    """A person resolves a GLPI ticket in the hub with a solution: GLPI gets it with the push, its SLA clock stops
    (and the reports have a time to resolve to show). Once: a second demo run finds it done."""
    from sqlalchemy import Connection, case, select

    from flows.push import push_outbox
    from flows.runtime import change_ticket, load_hub_config
    from flows.sla import sla_check
    from itsm_core.models import Comment, TicketStatus
    from itsm_core.store.comments import add_comments
    from itsm_core.store.tables import CommentRow, ExternalRefRow, SlaClockRow
    from itsm_core.store.tickets import change_status, format_ticket_id

    body = f"Solution:\n{DEMO_SOLUTION}"
    with store.connect() as conn:
        if conn.execute(select(CommentRow.id).where(CommentRow.body == body)).first() is not None:
            return  # resolved by the first demo run
        # A ticket whose resolution clock still runs, else the latest opened of those past their target: the demo's
        # data is dated from the day before, so late in the day every clock may have breached, and the report still
        # needs a time to resolve. Not the ticket `_show_push` commented on: a second demo run finds that one open.
        commented = select(CommentRow.ticket_id).where(CommentRow.body == DEMO_COMMENT)
        ticking = (
            select(SlaClockRow.ticket_id)
            .join(ExternalRefRow, ExternalRefRow.ticket_id == SlaClockRow.ticket_id)
            .where(ExternalRefRow.system == "demo-glpi", SlaClockRow.metric == "resolution",
                   SlaClockRow.state.in_(("running", "breached")), SlaClockRow.stopped_at.is_(None),
                   SlaClockRow.ticket_id.not_in(commented))
            .order_by(case((SlaClockRow.state == "running", 0), else_=1), SlaClockRow.started_at.desc(),
                      SlaClockRow.ticket_id)
        )  # fmt: skip
        ticket_id = conn.execute(ticking.limit(1)).scalar()
    if ticket_id is None:
        return

    def resolve(conn: Connection, ticket: int) -> tuple[frozenset[str], tuple[int, ...]]:
        added = tuple(add_comments(conn, [(ticket, Comment(body=body, author="demo@itsm-hub", public=True))]))
        changed = change_status(conn, ticket, TicketStatus.RESOLVED, "user:demo")
        return (frozenset({"status"}) if changed else frozenset()), added

    change_ticket(load_hub_config(str(config_file)), store, ticket_id, resolve)
    push_outbox(config_path=str(config_file))
    sla_check(config_path=str(config_file))
    console.print(f"resolved {format_ticket_id(ticket_id)} with a solution, pushed to GLPI; its SLA clock stopped",
                  highlight=False)  # fmt: skip


def _show_reports(config_file: Path, console: Console) -> None:
    """The standard reports of the demo store, written as the `report` deployment writes them."""
    from flows.reports import report_run

    result = report_run("demo-month", config_path=str(config_file))
    figures = ", ".join(f"{k}: {v}" for k, v in result["headline"].items())
    folder = Path(result["files"][0]).parent if result["files"] else config_file.parent
    console.print(f"reports ({result['period']}): {len(result['files'])} files in {folder}; {figures}", highlight=False)


DEMO_COMMENT = "Looked at from itsm-hub: the demo's comment, pushed to GLPI."


def _show_push(store: Store, config_file: Path, glpi: GlpiSimulator, console: Console) -> None:
    """The other way: a comment written in the hub on a GLPI ticket becomes a GLPI followup with one push."""
    from sqlalchemy import select

    from flows.push import push_outbox
    from flows.runtime import change_ticket, load_hub_config
    from itsm_core.models import Comment
    from itsm_core.store.comments import add_comments
    from itsm_core.store.tables import CommentRow, ExternalRefRow, TicketRow
    from itsm_core.store.tickets import format_ticket_id

    refs, tickets = ExternalRefRow.__table__, TicketRow.__table__
    query = (
        select(refs.c.ticket_id, refs.c.external_id)
        .join(tickets, tickets.c.id == refs.c.ticket_id)
        .where(refs.c.system == "demo-glpi", tickets.c.status.not_in(["resolved", "closed", "cancelled"]))
        .order_by(refs.c.id)
    )
    with store.connect() as conn:
        linked = conn.execute(query.limit(1)).first()  # GLPI takes no followup on a closed ticket
    if linked is None:
        return
    ticket_id, external_id = linked
    comment = Comment(body=DEMO_COMMENT, author="demo@itsm-hub")
    with store.connect() as conn:
        done = conn.execute(
            select(CommentRow.id).where(CommentRow.ticket_id == ticket_id, CommentRow.body == DEMO_COMMENT)
        ).first()
    if done is not None:  # a demo run again adds nothing: the comment was written and pushed the first time
        console.print(
            f"the demo's comment on {format_ticket_id(ticket_id)} was pushed to GLPI by the first demo run; "
            "nothing new to push",
            highlight=False,
        )
        return
    change_ticket(
        load_hub_config(str(config_file)),
        store,
        ticket_id,
        lambda conn, ticket: (frozenset(), tuple(add_comments(conn, [(ticket, comment)]))),
    )
    push_outbox(config_path=str(config_file))
    glpi_id = int(external_id.partition("/")[2])
    followups = [f for f in glpi.followups(glpi_id, decoded=True) if "itsm-hub" in (f["content"] or "")]
    console.print(
        f"pushed: a comment on {format_ticket_id(ticket_id)} is now followup {followups[-1]['id']} of GLPI ticket "
        f"{glpi_id} (the simulator starts afresh at each demo run)"
        if followups
        else f"the push to GLPI did not arrive: see `itsm sync status -c {config_file}`",
        highlight=False,
    )


DEMO_SOLMAN_NOTE = "Taken over by the network team in itsm-hub: the demo's note, pushed to Solman."


def _show_solman(store: Store, config_file: Path, solman: SolmanSimulator, console: Console) -> None:
    """Both ways with Solman: an incident from Solman, worked on in the hub (a status and a note) shows the
    mapped user status and the note in Solman after one push."""
    from sqlalchemy import Connection, select

    from flows.push import push_outbox
    from flows.runtime import change_ticket, load_hub_config
    from itsm_core.models import Comment, TicketStatus
    from itsm_core.store.comments import add_comments
    from itsm_core.store.tables import CommentRow, ExternalRefRow, TicketRow
    from itsm_core.store.tickets import change_status, format_ticket_id

    refs, tickets = ExternalRefRow.__table__, TicketRow.__table__
    query = (
        select(refs.c.ticket_id, refs.c.external_id)
        .join(tickets, tickets.c.id == refs.c.ticket_id)
        .where(refs.c.system == "demo-solman", tickets.c.status == TicketStatus.NEW)
        .order_by(refs.c.id)
    )
    with store.connect() as conn:
        linked = conn.execute(query.limit(1)).first()
    if linked is None:
        return
    ticket_id, guid = linked
    with store.connect() as conn:
        done = conn.execute(select(CommentRow.ticket_id).where(CommentRow.body == DEMO_SOLMAN_NOTE)).first()
    if done is not None:  # a demo run again: Solman starts afresh, the hub already did its part
        console.print(
            f"the demo's note on {format_ticket_id(done[0])} was pushed to Solman by the first demo run (the "
            "simulated Solman starts afresh at each run; `itsm sync check demo-solman` shows what the hub checks)",
            highlight=False,
        )
        return

    def work_on(conn: Connection, ticket: int) -> tuple[frozenset[str], tuple[int, ...]]:
        added = tuple(add_comments(conn, [(ticket, Comment(body=DEMO_SOLMAN_NOTE, author="demo@itsm-hub"))]))
        changed = change_status(conn, ticket, TicketStatus.IN_PROGRESS, "user:demo")
        return (frozenset({"status"}) if changed else frozenset()), added

    change_ticket(load_hub_config(str(config_file)), store, ticket_id, work_on)
    push_outbox(config_path=str(config_file))
    document = solman.documents.get(guid)
    noted = document is not None and any("demo's note" in text.text for text in document.texts)
    console.print(
        f"pushed: {format_ticket_id(ticket_id)}, set in progress in the hub, is Solman incident {document.object_id} "
        f"in status {document.status} ({solman.status_texts.get(document.status)})"
        + (", with the hub's note among its texts" if noted else "")
        if document is not None and document.status == "E0002"
        else f"the push to Solman did not arrive: see `itsm sync status -c {config_file}`",
        highlight=False,
    )


def copy_samples(inbox: Path) -> int:
    """Copy the bundled sample mails into the inbox, never overwriting a file that is already there."""
    inbox.mkdir(parents=True, exist_ok=True)
    copied = 0
    for sample in sorted(resources.files("flows.demo").joinpath("mail").iterdir(), key=lambda p: p.name):
        target = inbox / sample.name
        if sample.name.endswith(".eml") and not target.exists():  # 12-… is a corrupt file, on purpose
            with resources.as_file(sample) as path:
                shutil.copyfile(path, target)
            copied += 1
    return copied
