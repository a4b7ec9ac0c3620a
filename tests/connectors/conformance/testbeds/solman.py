"""`kind: solman`: the Solman simulator (simulators/solman/) over real HTTP on loopback, through ICT (the default
backend): incidents created in Solman are forwarded to the hub's system GUID, as an agent's action does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

import mappings
from connectors.solman._ict import system_guid
from simulators.solman.simulator import DELTA, SolmanSimulator
from tests.connectors.conformance.testbed import SOURCE, Testbed


class SolmanTestbed(Testbed):
    backend = "ict"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        self.sim = SolmanSimulator(clock=lambda: self.now)
        self.sim.__enter__()
        self.sim.forward_to = system_guid(SOURCE)
        self.added = 0

    def source(self, page_size: int) -> dict[str, Any]:
        return {
            "name": SOURCE, "kind": "solman", "backend": self.backend, "url": self.sim.origin, "user": self.sim.user,
            "password": self.sim.password, "sap_client": self.sim.sap_client, "page_size": page_size,
        }  # fmt: skip

    def add_tickets(self, count: int) -> None:
        for number in range(self.added, self.added + count):
            self.now += timedelta(seconds=10)
            self.sim.add_incident(f"Printer {number} is jammed", text=f"Printer {number} shows a paper jam.")
        self.added += count

    def add_unreadable(self) -> None:
        guid = self.sim.add_incident("Imported from a custom profile")
        self.sim.set_status(guid, "E0099")  # a code the profile does not map: decode refuses it, naming it
        self.sim.status_profiles["SMIN0001"]["E0099"] = "Imported"

    def close(self) -> None:
        self.sim.__exit__(None, None, None)

    def comment_count(self, external_id: str) -> int:
        return len(self.sim.documents[external_id].texts) - 1  # the first is the description


TESTBED = SolmanTestbed


class SolmanOdataTestbed(SolmanTestbed):
    """The same Solman through the Fiori OData services (`backend: odata`)."""

    backend = "odata"


class SolmanDeltaTestbed(SolmanTestbed):
    """Through OData with a customer's delta service in the profile: incremental, by change date."""

    backend = "odata"

    def source(self, page_size: int) -> dict[str, Any]:
        profile = self.base / "profile.yaml"
        bundled = yaml.safe_load((Path(mappings.__file__).parent / "solman_smin.yaml").read_text())
        profile.write_text(yaml.safe_dump({**bundled, "delta": {"service": DELTA, "overlap_seconds": 5}}))
        return {**super().source(page_size), "profile": str(profile)}


VARIANTS = {"odata": SolmanOdataTestbed, "odata-delta": SolmanDeltaTestbed}
