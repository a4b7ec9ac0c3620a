"""GLPI (9.5 / 10 / 11 legacy REST API, `apirest.php`): the client, the source connector and the writer.

- `client.py`: `GlpiClient`, the protocol (sessions, ranges, search, sub-items, writes, errors, retries).

The loopback GLPI that speaks the same API shape (for the demo, tests and benchmarks) lives in `simulators/glpi/`.
"""

from __future__ import annotations

from typing import Any

from connectors.glpi.config import GlpiSource
from connectors.glpi.push import GlpiWriter
from connectors.glpi.source import GlpiConnector
from connectors.registry import ConnectorKind
from itsm_core.config import HubConfig
from itsm_core.sync.related import RelatedRecords


def _timeline(config: HubConfig, source: Any) -> RelatedRecords:
    """A ticket system's intake: followups and solutions become the ticket's comments (`itsm_core/sync/related.py`)."""
    return RelatedRecords(source.name)


GLPI = ConnectorKind(
    name="glpi",
    config=GlpiSource,
    connector=GlpiConnector,
    mappings={"tickets": "glpi", "cis": "glpi_assets"},
    writer=GlpiWriter,
    intake=_timeline,
    simulator="simulators.glpi.simulator:GlpiSimulator",
    description="GLPI 9.5 / 10 / 11 through its legacy REST API, both ways, with assets as CIs",
)
