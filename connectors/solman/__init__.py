"""SAP Solution Manager ITSM (issue 19, being built). So far:

- `_odata.py`: SAP Gateway's OData v2 mechanics, tested with respx and against `simulators/solman/` over real HTTP;
- `profile.py`: the per-customer profile (bundled `mappings/solman_smin.yaml`) and the self-check's judgement;
- `backend.py`: the `SolmanBackend` interface and its `odata` implementation, every write read back.

Not a registered kind yet: no `sources:` entry can name it (the connector, the ICT SOAP backend and the push side
come next).
"""
