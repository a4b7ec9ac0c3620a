"""Simulators: faithful stand-ins for upstream systems we cannot run here (test tooling, never production).

Each one is written from the upstream system's documented API, traps included, and serves it over real HTTP
on loopback, so the connectors talk to it exactly as they would to the real thing.

Used by `itsm demo` / `itsm serve --demo`, the benchmarks (`bench/`) and the tests (`tests/`). Nothing under
`connectors/`, `itsm_core/` or `flows/` imports it, except the demo (`flows/demo`, and `flows/serve`'s demo mode);
no production config points at a simulator.

- `glpi/`: a GLPI 10 speaking the legacy REST API (`apirest.php`), backed by generated data.
"""
