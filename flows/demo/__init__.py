"""`itsm demo`: the whole cycle on bundled sample mail, offline, in a folder of its own.

The folder keeps a real config (`itsm.yaml`), a real drop folder (`inbox/`) and a SQLite store, so what the
demo shows can be explored afterwards with the ordinary commands.
"""

from __future__ import annotations

import shutil
import time
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

DEMO_CONFIG = """\
# Written by `itsm demo`. A real config: edit it, or copy it as a start for your own.
database_url: sqlite:///itsm.db      # relative to this file
sources:
  - name: demo-mailbox
    kind: maildir
    path: inbox                      # drop more .eml files here, then: itsm run -c {config}
"""


def run_demo(directory: Path, console: Console) -> None:
    from flows.cycle import hub_cycle
    from itsm_core.store import Store
    from itsm_core.store.quarantine import count_dead_letters
    from itsm_core.store.tickets import count_tickets, format_ticket_id, list_tickets

    directory.mkdir(parents=True, exist_ok=True)
    config_file = directory / "itsm.yaml"
    inbox = directory / "inbox"
    copied = _copy_samples(inbox)
    if not config_file.exists():
        config_file.write_text(DEMO_CONFIG.format(config=config_file), encoding="utf-8")
    console.print(f"demo folder: {directory.resolve()}  ({copied} sample mails copied to {inbox})", highlight=False)

    store = Store(f"sqlite:///{(directory / 'itsm.db').resolve()}")
    store.upgrade()
    with store.connect() as conn:
        before = count_tickets(conn)

    console.print("running the hub-cycle flow on a temporary local Prefect API (the first run takes longer)…")
    started = time.perf_counter()
    results = hub_cycle(config_path=str(config_file))
    elapsed = time.perf_counter() - started

    counts = results["demo-mailbox"]
    assert isinstance(counts, dict)
    table = Table("fetched", "created", "updated", "unchanged", "quarantined", title="demo-mailbox")
    table.add_row(*(str(counts[k]) for k in ("fetched", "created", "updated", "unchanged", "quarantined")))
    console.print(table)
    console.print(f"cycle finished in {elapsed:.1f} s", highlight=False)

    with store.connect() as conn:
        total = count_tickets(conn)
        newest = list_tickets(conn, limit=8)
        waiting = count_dead_letters(conn)
    tickets = Table(title=f"{total} tickets in the store, newest first")
    tickets.add_column("ticket", no_wrap=True)
    tickets.add_column("prio", no_wrap=True)
    tickets.add_column("requester", no_wrap=True)
    tickets.add_column("title", no_wrap=True, overflow="ellipsis", max_width=60)
    for row in newest:
        tickets.add_row(format_ticket_id(row["id"]), str(row["priority"]), row["requester"] or "", row["title"])
    console.print(tickets)
    if total == before:
        console.print("no new tickets: every sample was already in the store (the hub never imports a mail twice)")
    c = f"-c {config_file}"
    console.print(
        "\nwhere to look next (the itsm command is in .venv/bin):\n"
        f"  itsm tickets list {c}            all tickets; --json for scripts\n"
        f"  itsm tickets show T-000001 {c}   one ticket, its attachments and history\n"
        f"  itsm deadletters list {c}        {waiting} record(s) quarantined, with the reason\n"
        f"  itsm run {c}                     the cycle again: nothing is imported twice\n"
        "  README.md, 'Operating it with Prefect': a server, a worker, runs and artifacts in the Prefect UI",
        highlight=False,
        soft_wrap=True,
    )
    store.dispose()


def _copy_samples(inbox: Path) -> int:
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
