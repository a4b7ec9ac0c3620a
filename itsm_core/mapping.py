"""Declarative mappings: how a source's decoded record becomes a canonical ticket.

A mapping is a YAML file in `mappings/` (one per source kind, or a path given in the source's config):

```yaml
source_type: email
defaults: {kind: incident}             # canonical values used when the record has none
fields: {title: subject, requester: from_address, created_at: $received_at}
value_maps: {status: {"1": new, "2": assigned}}   # upstream codes → canonical values
custom_fields: {message_id: message_id}           # kept verbatim in tickets.custom_fields
required: [requester]                             # a record without these is quarantined
ownership: {title: source, assignee: hub}         # who wins a conflict; unlisted: the later change
```

Field paths are dotted (`actors.0.email`); `$received_at` is the time the hub landed the record.
`map_ticket` is pure: it reads the record, never the store or the network.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import to_jsonable_python

from itsm_core.errors import ConfigError, MappingError
from itsm_core.models import Ticket

_TICKET_FIELDS = set(Ticket.model_fields)
TITLE_MAX = 500


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source_type: str
    defaults: dict[str, Any] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)
    value_maps: dict[str, dict[str, Any]] = Field(default_factory=dict)
    custom_fields: dict[str, str] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)
    ownership: dict[str, Literal["source", "hub"]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_fields(self) -> Mapping:
        for section in ("defaults", "fields", "value_maps", "ownership"):
            unknown = set(getattr(self, section)) - _TICKET_FIELDS
            if unknown:
                raise ValueError(f"{section}: {', '.join(sorted(unknown))} not canonical ticket fields")
        unknown_required = set(self.required) - _TICKET_FIELDS
        if unknown_required:
            raise ValueError(f"required: {', '.join(sorted(unknown_required))} not canonical ticket fields")
        return self


@cache
def load_mapping(name_or_path: str) -> Mapping:
    """A mapping by name (a file in the bundled `mappings/` package) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"}:
        origin, text = str(path), _read(path)
    else:
        resource = resources.files("mappings").joinpath(f"{name_or_path}.yaml")
        if not resource.is_file():
            raise ConfigError(f"no mapping named '{name_or_path}' in mappings/", key="mapping")
        origin, text = f"mappings/{name_or_path}.yaml", resource.read_text(encoding="utf-8")
    try:
        return Mapping.model_validate(yaml.safe_load(text) or {})
    except (ValidationError, yaml.YAMLError) as exc:
        raise ConfigError(f"{origin}: invalid mapping: {exc}", key="mapping") from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read mapping {path}: {exc.strerror}", key="mapping") from None


_MISSING = object()


def reverse_value_map(mapping: Mapping, field: str) -> dict[str, str]:
    """Canonical value → upstream code for pushing `field` back; the first code listed for a value wins."""
    reverse: dict[str, str] = {}
    for code, value in mapping.value_maps.get(field, {}).items():
        reverse.setdefault(str(value), code)
    return reverse


def _get(record: dict[str, Any], path: str) -> Any:
    node: Any = record
    for step in path.split("."):
        if isinstance(node, dict):
            node = node.get(step, _MISSING)
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def map_ticket(record: dict[str, Any], mapping: Mapping, *, received_at: datetime) -> Ticket:
    """The canonical ticket a decoded record describes. Raises `MappingError` with a reason a person can act on."""
    values: dict[str, Any] = {"source_type": mapping.source_type, **mapping.defaults}
    context = {"$received_at": received_at}
    for field, path in mapping.fields.items():
        value = context[path] if path in context else _get(record, path)
        if value is _MISSING or value is None or value == "":
            continue
        if field in mapping.value_maps:
            table = mapping.value_maps[field]
            if str(value) not in table:
                raise MappingError(
                    f"{field}: upstream value {value!r} has no entry in the mapping's value_maps.{field}; "
                    "add it to the mapping and replay"
                )
            value = table[str(value)]
        values[field] = value
    missing = [field for field in mapping.required if values.get(field) in (None, "")]
    if missing:
        raise MappingError(f"record has no {', '.join(missing)} (required by the {mapping.source_type} mapping)")
    custom = {name: _get(record, path) for name, path in mapping.custom_fields.items()}
    custom = {name: value for name, value in custom.items() if value is not _MISSING and value not in (None, [], "")}
    # custom_fields is a JSON column: dates become ISO strings here, once, rather than failing in the store.
    values["custom_fields"] = {**values.get("custom_fields", {}), **to_jsonable_python(custom)}
    values["title"] = _title(values.get("title"))
    values.setdefault("created_at", received_at)
    values.setdefault("updated_at", values["created_at"])
    try:
        return Ticket.model_validate(values)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise MappingError(f"{field}: {first['msg']}") from None


def _title(title: Any) -> str:
    text = " ".join(str(title).split()) if title else ""
    if not text:
        return "(no subject)"
    return text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1] + "…"
