"""SAP Solution Manager 7.2 ITSM incidents, both ways, through ICT (SOAP) or the Fiori OData services.

- `config.py`: `SolmanSource`, the source's settings; `profile.py`: the customer's profile (status profile and
  E-codes, transitions, texts, zones, limits; bundled: `mappings/solman_smin.yaml`) and the self-check's judgement;
- `_sap.py`: SAP's HTTP failures as the hub's errors; `_ict.py`: ``ICT_SERVICE_DESK_API`` through zeep;
  `_odata.py`: SAP Gateway's OData v2 mechanics;
- `backend.py`: `SolmanBackend`, one interface over both channels (`IctBackend`, `OdataBackend`), every write read
  back before it counts;
- `source.py`: `SolmanConnector`, incidents as JSON documents; `push.py`: `SolmanWriter`, the hub's changes back.

The loopback Solman that speaks both channels (demo, tests, benchmark) lives in `simulators/solman/`.
"""

from __future__ import annotations

from connectors.registry import ConnectorKind
from connectors.solman.config import SolmanSource
from connectors.solman.push import SolmanWriter
from connectors.solman.source import SolmanConnector
from itsm_core.sync.related import RelatedRecords

SOLMAN = ConnectorKind(
    name="solman",
    config=SolmanSource,
    connector=SolmanConnector,
    mappings={"tickets": "solman"},
    writer=SolmanWriter,
    intake=RelatedRecords.for_source,
    simulator="simulators.solman.simulator:SolmanSimulator",
    description="SAP Solution Manager 7.2 incidents through ICT (SOAP) or the Fiori OData services, both ways",
)
