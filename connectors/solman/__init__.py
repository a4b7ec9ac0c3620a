"""SAP Solution Manager ITSM (issue 19, being built): so far SAP Gateway's OData v2 mechanics (`_odata.py`), which
the `odata` backend will stand on, tested with respx and against `simulators/solman/` over real HTTP; and the
per-customer profile (`profile.py`, bundled `mappings/solman_smin.yaml`) with the start-up self-check's judgement.
Not a registered kind yet: no `sources:` entry can name it."""
