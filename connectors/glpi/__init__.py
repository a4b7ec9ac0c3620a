"""GLPI (9.5 / 10 / 11 legacy REST API, `apirest.php`): the client, the source connector and a local simulator.

- `client.py`: `GlpiClient`, the protocol (sessions, ranges, search, sub-items, writes, errors, retries).
- `simulator.py`: a loopback GLPI speaking the same API shape, for the demo, tests and benchmarks.
"""
