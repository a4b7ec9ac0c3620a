"""Plug-ins found through Python entry points: how connector kinds (and later other extensions) join the hub.

A distribution declares them in its `pyproject.toml`, the way pytest and Singer/Meltano plugins do:

```toml
[project.entry-points."itsm_hub.connectors"]
zammad = "itsm_zammad:KIND"      # the name is the `kind:` a config writes
```

The hub's own kinds are declared the same way (this project's `pyproject.toml`), so a third-party kind is no
second-class citizen. The core reads only each kind's `name` and `config` (its config model, for validating
`sources:`); what a kind object is beyond that is the connectors' business (`connectors/registry.py`).
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import Any

from itsm_core.errors import ConfigError

#: The entry-point group of connector kinds.
CONNECTOR_KINDS = "itsm_hub.connectors"


@functools.cache
def load_plugins(group: str) -> dict[str, Any]:
    """The objects registered under `group`, by entry-point name, in name order; loaded once per process.

    Raises `ConfigError` when one cannot be imported, names itself differently from its entry point, or when two
    distributions register the same name: the hub must not pick one silently.
    """
    found: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for point in sorted(entry_points(group=group), key=lambda p: p.name):
        if point.name in found:
            raise ConfigError(
                f"two packages register the {group} entry point '{point.name}' ({origin[point.name]} and "
                f"{point.value}); uninstall one",
                key=group,
            )
        try:
            plugin = point.load()
        except Exception as exc:
            raise ConfigError(
                f"the {group} plug-in '{point.name}' ({point.value}) cannot be loaded: {type(exc).__name__}: {exc}",
                key=group,
            ) from exc
        if getattr(plugin, "name", point.name) != point.name:
            raise ConfigError(
                f"the {group} entry point '{point.name}' points to a plug-in named '{plugin.name}'; make them equal",
                key=group,
            )
        found[point.name] = plugin
        origin[point.name] = point.value
    if not found and group == CONNECTOR_KINDS:
        raise ConfigError(
            "no connector kinds are registered: itsm-hub is not installed in this Python; run `make test` or "
            "`pip install -e .` in the project (the kinds are entry points of the package)",
            key=group,
        )
    return found
