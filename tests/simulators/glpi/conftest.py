"""GLPI fixtures: a simulated GLPI 10 (simulators/glpi/simulator.py) serving its REST API on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.glpi.simulator import GlpiSimulator


@pytest.fixture(scope="module")
def glpi_sim() -> Iterator[GlpiSimulator]:
    """A GLPI with 40 generated tickets (seed 7), shared by the tests of one module.

    Its URL is `glpi_sim.url`; API tokens are `HUB_USER_TOKEN` (account `itsm-hub`) and `TECH_USER_TOKEN`
    (`tech`) from `simulators.glpi.simulator`. Tests that write should work on tickets they create
    (`glpi_sim.add_ticket(...)`) or take `fresh_glpi_sim`, so the 40 generated ones stay as generated.
    """
    with GlpiSimulator(tickets=40, seed=7) as sim:
        yield sim


@pytest.fixture
def fresh_glpi_sim() -> Iterator[GlpiSimulator]:
    """The same 40-ticket GLPI, started for one test only (for tests that change generated data or faults)."""
    with GlpiSimulator(tickets=40, seed=7) as sim:
        yield sim
