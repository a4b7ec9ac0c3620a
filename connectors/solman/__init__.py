"""SAP Solution Manager ITSM (issue 19, being built): so far the OData v2 mechanics of SAP Gateway (`_odata.py`),
which the `odata` backend will stand on. Not a registered kind yet: no `sources:` entry can name it."""
