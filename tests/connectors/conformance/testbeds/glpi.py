"""`kind: glpi`: the GLPI simulator (simulators/glpi/) over real HTTP on loopback, with assets as CIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.glpi.decode import ticket_glpi_id
from simulators.glpi.simulator import HUB_USER_TOKEN, GlpiSimulator
from tests.connectors.conformance.testbed import SOURCE, Testbed


class GlpiTestbed(Testbed):
    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        self.sim = GlpiSimulator(tickets=0, assets=12, seed=3, clock=lambda: self.now)
        self.sim.start()
        self.added = 0

    def source(self, page_size: int) -> dict[str, Any]:
        return {
            "name": SOURCE, "kind": "glpi", "url": self.sim.url, "user_token": HUB_USER_TOKEN,
            "timezone": "Europe/Paris", "page_size": page_size, "assets": ["Computer", "Printer", "Software"],
        }  # fmt: skip

    def add_tickets(self, count: int) -> None:
        for number in range(self.added, self.added + count):
            self.now += timedelta(seconds=10)  # each its own date_mod: the overlap's re-reads are then visible
            self.sim.add_ticket(f"Printer {number} is jammed", f"<p>Printer {number} shows a paper jam.</p>")
        self.added += count

    def add_unreadable(self) -> None:
        ticket_id = self.sim.add_ticket("Imported long ago", "<p>From an old migration</p>")
        self.sim.malform(ticket_id, "zero_date")  # what direct SQL imports leave: a date GLPI cannot have

    def close(self) -> None:
        self.sim.stop()

    def comment_count(self, external_id: str) -> int:
        ticket_id = ticket_glpi_id(external_id)
        return len(self.sim.followups(ticket_id)) + len(self.sim.rows("ITILSolution", items_id=ticket_id))

    def purge(self, external_id: str) -> None:
        self.sim.purge("Ticket", ticket_glpi_id(external_id))


TESTBED = GlpiTestbed
