"""GLPI (9.5 / 10 / 11 legacy REST API, `apirest.php`): the client, the source connector and the writer.

- `config.py`: `GlpiSource`, the source's settings; `client.py` (with `_http.py`): `GlpiClient`, the protocol
  (sessions, ranges, search, sub-items, writes, errors, retries);
- `source.py`: `GlpiConnector`, tickets and assets as documents; `decode.py`, `decode_assets.py` read them;
- `push.py`: `GlpiWriter`, the hub's changes back as GLPI writes.

The loopback GLPI that speaks the same API shape (for the demo, tests and benchmarks) lives in `simulators/glpi/`.
"""

from __future__ import annotations

from connectors.glpi.config import GlpiSource
from connectors.glpi.push import GlpiWriter
from connectors.glpi.source import GlpiConnector
from connectors.registry import ConnectorKind
from itsm_core.sync.related import RelatedRecords

GLPI = ConnectorKind(
    name="glpi",
    config=GlpiSource,
    connector=GlpiConnector,
    mappings={"tickets": "glpi", "cis": "glpi_assets"},
    writer=GlpiWriter,
    intake=RelatedRecords.for_source,
    simulator="simulators.glpi.simulator:GlpiSimulator",
    description="GLPI 9.5 / 10 / 11 through its legacy REST API, both ways, with assets as CIs",
)
