"""Randomised two-way convergence with Solution Manager (ICT): seeded random edits on both sides — user statuses,
notes — with the hub's cycles (pull, then push) at random points between them. At the end, after quiet cycles,
both sides agree on each incident's status (through the profile's E-codes), every note written on either side is
on both exactly once, nothing ping-pongs (the outbox is empty, two more cycles send and change nothing) and no
dead letter is left. The GLPI run of the same test is tests/faults/test_convergence.py.

    pytest tests/faults/test_convergence_solman.py --runs 5 --fault-seed 7
"""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from connectors.solman.profile import load_profile
from itsm_core.errors import HubError
from itsm_core.store.outbox import depth
from itsm_core.store.quarantine import list_dead_letters
from simulators.solman.simulator import SolmanSimulator
from tests.support.solman import SOURCE, SolmanHub

pytestmark = pytest.mark.postgres
OPERATIONS = 150
INCIDENTS = 10
STATUSES = {"E0002": "in_progress", "E0003": "pending"}  # Solman ↔ hub, the statuses both sides set here
TOKEN = re.compile(r"\b[sh]\d+\b")  # each note carries one: s12 written in Solman, h7 in the hub


def test_random_edits_on_both_sides_converge_without_loops_or_losses(tmp_path, postgres_url, seed):
    chance = random.Random(seed)
    profile = load_profile("solman_smin")
    with SolmanSimulator() as sim:
        hub = SolmanHub.start(sim, postgres_url, tmp_path)
        live = [sim.add_incident(f"Case {n}", text=f"case {n}") for n in range(INCIDENTS)]
        for guid in live:
            sim.set_status(guid, "E0002")
        hub.sync()
        hub.push()
        done: Counter[str] = Counter()
        for n in range(OPERATIONS):
            guid = chance.choice(live)
            kind = chance.choices(["solman_note", "hub_note", "solman_status", "hub_status"], [25, 25, 20, 20])[0]
            try:
                if kind == "solman_note":
                    sim.add_text(guid, f"note s{n}")
                elif kind == "hub_note":
                    hub.change(guid, comment=f"note h{n}")
                elif kind == "solman_status":
                    sim.set_status(guid, chance.choice(list(STATUSES)))
                else:
                    hub.change(guid, status=chance.choice(list(STATUSES.values())))
                done[kind] += 1
            except HubError as exc:  # a transition the hub's table refuses: a person would be told the same
                done[f"{kind} refused: {type(exc).__name__}"] += 1
            if chance.random() < 0.2:
                hub.sync()
                hub.push()

        for _ in range(3):  # quiet: what is in flight lands, on both sides
            hub.sync()
            hub.push()
        quiet = [(hub.sync(), hub.push()) for _ in range(2)]
        context = f"seed {seed}, operations {dict(done)}"
        assert [pushed.sent for _, pushed in quiet] == [0, 0], f"{context}: still pushing: {quiet}"
        assert all(pulled.created == pulled.updated == 0 for pulled, _ in quiet), f"{context}: still changing"
        with hub.store.connect() as conn:
            assert depth(conn, SOURCE) == 0, f"{context}: the outbox is not empty"
            assert list_dead_letters(conn) == [], f"{context}: dead letters"

        compared = 0
        for guid in live:
            document, mine = sim.documents[guid], hub.ticket(guid)
            assert profile.status_of("SMIN", document.status) == mine["status"], f"{context}: status of {guid}"
            theirs = Counter(token for text in document.texts for token in TOKEN.findall(text.text))
            ours = Counter(token for body in hub.comments(guid) for token in TOKEN.findall(body))
            assert theirs == ours and max(ours.values(), default=1) == 1, f"{context}: notes of {guid}"
            compared += sum(ours.values())
        assert compared >= (done["solman_note"] + done["hub_note"]) // 2, context  # the check compared something
        hub.store.dispose()
