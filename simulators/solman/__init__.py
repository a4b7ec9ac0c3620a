"""A loopback SAP Solution Manager (the Fiori OData services) over real HTTP, for the tests: `simulator.py`."""
