"""Randomised two-way convergence with GLPI: seeded random edits on both sides — status, urgency, comments, now
and then a purge in GLPI — with the hub's cycles (pull, then push) at random points between them. At the end,
after quiet cycles, both sides agree field by field (through the mapping's codes: GLPI's five urgencies are the
hub's three), every comment written on either side is on both exactly once, nothing ping-pongs (the outbox is
empty and two more cycles send and change nothing), and a purged ticket is cancelled in the hub.

    pytest tests/faults/test_convergence.py --runs 5 --fault-seed 7       # more seeds; `--kills` is unused here
"""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from sqlalchemy import select

from connectors.base import TICKETS
from flows.sync import check_purges
from itsm_core.errors import HubError
from itsm_core.mapping import load_mapping
from itsm_core.store.outbox import depth
from itsm_core.store.quarantine import list_dead_letters
from itsm_core.store.tables import CommentRow, TicketRow
from simulators.glpi.simulator import GlpiSimulator
from tests.support.glpi import GlpiHub

pytestmark = pytest.mark.postgres
OPERATIONS = 200
TICKETS_IN_PLAY = 12
STATUSES = {2: "assigned", 3: "in_progress", 4: "pending"}  # GLPI ↔ hub, the statuses both sides set here
SEEN = {1: "new", **STATUSES}  # and GLPI's own: a requester answering an unassigned pending ticket makes it new
TOKEN = re.compile(r"\b[gh]\d+\b")  # each comment carries one: g12 written in GLPI, h7 in the hub


def test_random_edits_on_both_sides_converge_without_loops_or_losses(tmp_path, postgres_url, seed):
    chance = random.Random(seed)
    urgency = {int(code): level for code, level in load_mapping("glpi").value_maps["urgency"].items()}
    with GlpiSimulator(tickets=10, seed=seed % 1000) as sim:
        hub = GlpiHub.start(sim, postgres_url, tmp_path)
        requester = next(row["name"] for row in sim.rows("User") if row["name"] not in ("itsm-hub", "tech"))
        live = [sim.add_ticket(f"Case {n}", f"<p>case {n}</p>", requester=requester) for n in range(TICKETS_IN_PLAY)]
        for ticket in live:
            sim.set_status(ticket, 2, user="tech")
        hub.cycle()
        purged: list[int] = []
        purged_ids: dict[int, int] = {}
        done: Counter[str] = Counter()
        for n in range(OPERATIONS):
            ticket = chance.choice(live)
            kind = chance.choices(
                ["glpi_comment", "hub_comment", "glpi_status", "hub_status", "glpi_urgency", "hub_urgency", "purge"],
                weights=[20, 20, 15, 15, 12, 12, 2],
            )[0]
            try:
                if kind == "glpi_comment":
                    sim.add_followup(ticket, f"<p>note g{n}</p>", user=requester)
                elif kind == "hub_comment":
                    hub.change(ticket, comment=f"note h{n}")
                elif kind == "glpi_status":
                    sim.set_status(ticket, chance.choice(list(STATUSES)), user="tech")
                elif kind == "hub_status":
                    hub.change(ticket, status=chance.choice(list(STATUSES.values())))
                elif kind == "glpi_urgency":
                    sim.update("Ticket", ticket, user="tech", urgency=chance.randint(1, 5))
                elif kind == "hub_urgency":
                    hub.change(ticket, urgency=chance.randint(1, 3))
                elif len(live) > TICKETS_IN_PLAY - 2:  # a purge now and then, never the last tickets
                    purged_ids[ticket] = hub.ticket_id(ticket)  # the link goes with the purge check
                    sim.purge("Ticket", ticket)
                    live.remove(ticket)
                    purged.append(ticket)
                done[kind] += 1
            except HubError as exc:  # a transition the hub's table refuses: a person would be told the same
                done[f"{kind} refused: {type(exc).__name__}"] += 1
            if chance.random() < 0.2:
                hub.cycle()

        for _ in range(3):  # quiet: what is in flight lands, on both sides
            hub.cycle()
        counts = check_purges.fn(hub.runtime(), TICKETS)
        quiet = [hub.cycle() for _ in range(2)]
        context = f"seed {seed}, operations {dict(done)}"
        assert [pushed.sent for _, pushed in quiet] == [0, 0], f"{context}: still pushing: {quiet}"
        assert all(pulled.created == pulled.updated == 0 for pulled, _ in quiet), f"{context}: still changing"
        with hub.store.connect() as conn:
            assert depth(conn, "glpi") == 0, f"{context}: the outbox is not empty"
            letters = [(r["external_id"], r["reason"]) for r in list_dead_letters(conn)]
        # A push to a ticket purged meanwhile is refused (404) and kept as a dead letter: expected, nothing else.
        purged_paths = tuple(f"/Ticket/{t}{end}" for t in purged for end in (" ", "/"))
        unexpected = [letter for letter in letters if not any(path in letter[1] for path in purged_paths)]
        assert unexpected == [], f"{context}: dead letters"
        assert counts["purged"] == len(purged), context

        for ticket in live:
            glpi, mine = sim.ticket(ticket), hub.ticket(ticket)
            assert SEEN.get(glpi["status"]) == mine["status"], f"{context}: status of {ticket}"
            assert urgency[glpi["urgency"]] == mine["urgency"], f"{context}: urgency of {ticket}"
            theirs = Counter(t for f in sim.followups(ticket, decoded=True) for t in TOKEN.findall(f["content"]))
            ours = Counter(t for body in hub.comments(ticket) for t in TOKEN.findall(body))
            assert theirs == ours and max(ours.values(), default=1) == 1, f"{context}: comments of {ticket}"
        with hub.store.connect() as conn:
            bodies = conn.execute(select(CommentRow.body)).scalars().all()
        compared = sum(len(TOKEN.findall(body)) for body in bodies)
        assert compared >= (done["glpi_comment"] + done["hub_comment"]) // 2, context  # the check compared something
        with hub.store.connect() as conn:
            statuses = dict(conn.execute(select(TicketRow.id, TicketRow.status)).all())
        assert [statuses[purged_ids[t]] for t in purged] == ["cancelled"] * len(purged), context
        hub.store.dispose()
