"""A loopback GLPI 10 (legacy REST API, `apirest.php`) over real HTTP, for the demo, the tests and the benchmark.

- `simulator.py`: `GlpiSimulator`, the HTTP semantics (sessions, ranges, search, writes, faults); also
  `python -m simulators.glpi.simulator`.
- `simdata.py`: schemas, compact row storage, GLPI 10's text sanitiser and the deterministic data generator.
"""
