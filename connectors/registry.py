"""The connector kinds, keyed by the `kind:` a source's config names; everything kind-specific is derived here.

A kind is one `ConnectorKind`, declared in its package and registered as an entry point of the group
``itsm_hub.connectors`` (`itsm_core/plugins.py`): this project's `pyproject.toml` registers its own kinds that
way, and a third-party package registers more the same way. From the registered kinds come the validation of
`sources:` (each entry by its kind's config model), `build_connector`, `build_writer` and `push_targets`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from connectors.base import TICKETS, SourceConnector, SourceWriter
from itsm_core.config import HubConfig, SourceBase, TwoWaySource
from itsm_core.errors import ConfigError
from itsm_core.plugins import CONNECTOR_KINDS, load_plugins
from itsm_core.sync.intake import Intake


@dataclass(frozen=True)
class ConnectorKind:
    """One kind of source: its config model, its connector, its writer if two-way, its default mappings.

    - `config`: a `SourceBase` subclass with ``kind: Literal[name]``; a two-way kind's extends `TwoWaySource`;
    - `connector`: builds the `SourceConnector` of one configured source (the config model's instance);
    - `mappings`: the default mapping (a name in `mappings/`) of each entity its connectors read;
    - `writer`: the `SourceWriter` class of a two-way source (built from its config); None for a read-only one;
    - `intake`: the channel's rules before mapping (mail's threads and noise, a ticket system's timeline);
    - `simulator`: ``"module:attr"`` of a faithful stand-in of the upstream (demo, benchmarks, tests), imported
      only by them, never by a production run;
    - `testbed`: ``"module:attr"`` of its conformance testbed, for a kind shipped outside this repository (the
      hub's own kinds have theirs in `tests/connectors/conformance/testbeds/`).
    """

    name: str
    config: type[SourceBase]
    connector: Callable[[Any], SourceConnector]
    mappings: Mapping[str, str]
    writer: type[SourceWriter] | None = None
    intake: Callable[[HubConfig, Any], Intake | None] | None = None
    simulator: str | None = None
    testbed: str | None = None
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        declared = getattr(self.config.model_fields.get("kind"), "annotation", None)
        if declared is None or getattr(declared, "__args__", None) != (self.name,):
            raise TypeError(f"kind {self.name!r}: its config model must declare kind: Literal[{self.name!r}]")
        if TICKETS not in self.mappings:
            raise TypeError(f"kind {self.name!r}: `mappings` must name the default mapping of its tickets")
        if self.writer is not None and not issubclass(self.config, TwoWaySource):
            raise TypeError(f"kind {self.name!r} has a writer: its config model must extend TwoWaySource (push)")

    @property
    def two_way(self) -> bool:
        return self.writer is not None


def registered_kinds() -> dict[str, ConnectorKind]:
    """Every registered kind by name (the hub's own and installed plug-ins')."""
    kinds = load_plugins(CONNECTOR_KINDS)
    for name, kind in kinds.items():
        if not isinstance(kind, ConnectorKind):
            raise ConfigError(f"the connector kind '{name}' is a {type(kind).__name__}, not a ConnectorKind", key=name)
    return kinds


def kind_of(source: SourceBase) -> ConnectorKind:
    return registered_kinds()[source.kind]  # config validation admits registered kinds only


def build_connector(source: SourceBase) -> SourceConnector:
    return kind_of(source).connector(source)


def default_mapping(source: SourceBase, entity: str = TICKETS) -> str:
    """The mapping `source` uses for `entity`: the one its config names, else its kind's default."""
    return source.mapping_for(entity) or kind_of(source).mappings[entity]


def push_targets(config: HubConfig) -> list[SourceBase]:
    """The enabled two-way sources the hub pushes its changes to (`push: true`, their default)."""
    return [s for s in config.sources if s.enabled and kind_of(s).two_way and cast(TwoWaySource, s).push]


def build_writer(source: SourceBase) -> SourceWriter:
    writer = kind_of(source).writer
    if writer is None:
        raise ConfigError(f"source '{source.name}' (kind {source.kind}) takes no pushes", key="sources")
    return writer(source)
