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
events: {identity: body.groupKey, event: body.status, actions: {firing: open, resolved: resolve}}  # webhooks
```

Field paths are dotted (`actors.0.email`); `$received_at` is the time the hub landed the record. A value map
may end with a `"*"` entry: the value of any upstream code it does not list (without one, an unlisted code
quarantines the record, so a new code is noticed rather than guessed).

A source that also reads configuration items has a second mapping for them (`CIMapping`, e.g.
`mappings/glpi_assets.yaml`), in the same shape:

```yaml
defaults: {status: active}
fields: {ci_class: itemtype, name: name, serial: serial, status: lifecycle, tenant: entity}
value_maps: {ci_class: {Computer: computer}, status: {"In use": active, "*": active}}
attributes: {location: location, installed_software: installed_software}   # kept in the CI's attributes
required: [name]
relationships:        # edges derived from an attribute listing other CIs of the same system by external id
  - {attribute: installed_software, rel_type: installed_on, direction: incoming}   # each listed CI → this CI
```

`map_ticket` and `map_ci` are pure: they read the record, never the store or the network.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import to_jsonable_python

from itsm_core.errors import ConfigError, MappingError
from itsm_core.models import ClassifiedBy, ConfigurationItem, Ticket
from itsm_core.text import collapse_spaces

_TICKET_FIELDS = set(Ticket.model_fields)
_CI_FIELDS = set(ConfigurationItem.model_fields) - {"attributes"}
TITLE_MAX = 500
CI_NAME_MAX = 300
#: The key of a value map that catches every upstream code it does not list.
ANY = "*"
_M = TypeVar("_M", bound=BaseModel)


EventAction = Literal["open", "update", "comment", "resolve", "ignore"]


class EventRules(BaseModel):
    """For sources that send events rather than states (webhooks): how an event finds its ticket and what it does.

    - `identity`: the path of what finds the ticket again (Alertmanager's ``body.groupKey``, a conversation id);
    - `event`: the path of the event's name; `actions`: name → ``open`` (create; on a known ticket, a comment: a
      repeat), ``update`` (create or update), ``comment`` (on a known ticket), ``resolve`` (the mapped fields,
      status included, on a known ticket; nothing to resolve is ignored), ``ignore``. An event not listed is
      quarantined with its name, as an unknown code is;
    - `comment` / `first_comment`: jinja2 templates (over the decoded record) of the comment a repeat or a
      ``comment`` event adds, and of the first comment of a ticket an event opens (a chat transcript).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: str
    event: str
    actions: dict[str, EventAction]
    comment: str | None = None
    first_comment: str | None = None


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source_type: str
    defaults: dict[str, Any] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)
    value_maps: dict[str, dict[str, Any]] = Field(default_factory=dict)
    custom_fields: dict[str, str] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)
    ownership: dict[str, Literal["source", "hub"]] = Field(default_factory=dict)
    events: EventRules | None = None

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


class RelationshipSpec(BaseModel):
    """CI relationships derived from one attribute: the external ids (in the same system) it lists.

    `incoming`: each listed CI → this one (software `installed_on` a computer); `outgoing`: this one → each.
    The record whose CI carries the attribute owns those edges: when the list changes, the edges follow.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str
    rel_type: str = Field(min_length=1, max_length=64)
    direction: Literal["incoming", "outgoing"] = "outgoing"


class CIMapping(BaseModel):
    """How a source's decoded record becomes a canonical configuration item (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: dict[str, Any] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)
    value_maps: dict[str, dict[str, Any]] = Field(default_factory=dict)
    attributes: dict[str, str] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)
    relationships: list[RelationshipSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_fields(self) -> CIMapping:
        for section in ("defaults", "fields", "value_maps", "required"):
            unknown = set(getattr(self, section)) - _CI_FIELDS
            if unknown:
                raise ValueError(f"{section}: {', '.join(sorted(unknown))} not canonical CI fields")
        for spec in self.relationships:
            if spec.attribute not in self.attributes:
                raise ValueError(f"relationships: {spec.attribute!r} is not one of the mapping's attributes")
        return self


@cache
def load_mapping(name_or_path: str) -> Mapping:
    """A mapping by name (a file in the bundled `mappings/` package) or by path to a YAML file."""
    return _load(name_or_path, Mapping)


@cache
def load_ci_mapping(name_or_path: str) -> CIMapping:
    """A CI mapping by name (a file in `mappings/`) or by path to a YAML file."""
    return _load(name_or_path, CIMapping)


def _load(name_or_path: str, model: type[_M]) -> _M:
    return load_yaml_model(name_or_path, model, "mapping")


def load_yaml_model(name_or_path: str, model: type[_M], what: str) -> _M:
    """A YAML file validated by `model`: by name, a file in the bundled `mappings/` package, or by path. Errors
    are `ConfigError`s whose key is `what` ("mapping", "profile") and whose message names the file."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"}:
        origin, text = str(path), _read(path, what)
    else:
        resource = resources.files("mappings").joinpath(f"{name_or_path}.yaml")
        if not resource.is_file():
            raise ConfigError(f"no {what} named '{name_or_path}' in mappings/", key=what)
        origin, text = f"mappings/{name_or_path}.yaml", resource.read_text(encoding="utf-8")
    try:
        return model.model_validate(yaml.safe_load(text) or {})
    except (ValidationError, yaml.YAMLError) as exc:
        raise ConfigError(f"{origin}: invalid {what}: {exc}", key=what) from None


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}", key=what) from None


_MISSING = object()


def reverse_value_map(mapping: Mapping, field: str) -> dict[str, str]:
    """Canonical value → upstream code for pushing `field` back; the first code listed for a value wins."""
    reverse: dict[str, str] = {}
    for code, value in mapping.value_maps.get(field, {}).items():
        if code != ANY:
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


def value_at(record: dict[str, Any], path: str) -> Any:
    """The value at a dotted `path` of `record` (list items by index), None where there is none."""
    value = _get(record, path)
    return None if value is _MISSING else value


def _mapped_fields(
    record: dict[str, Any],
    fields: dict[str, str],
    value_maps: dict[str, dict[str, Any]],
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The canonical values `fields` read from `record`, translated by `value_maps`; empty values left out."""
    values: dict[str, Any] = {}
    for field, path in fields.items():
        value = context[path] if context and path in context else _get(record, path)
        if value is _MISSING or value is None or value == "":
            continue
        if field in value_maps:
            table = value_maps[field]
            if str(value) in table:
                value = table[str(value)]
            elif ANY in table:
                value = table[ANY]
            else:
                raise MappingError(
                    f"{field}: upstream value {value!r} has no entry in the mapping's value_maps.{field}; "
                    "add it to the mapping and replay"
                )
        values[field] = value
    return values


def _validation_error(exc: ValidationError) -> MappingError:
    first = exc.errors(include_input=False, include_url=False)[0]
    field = ".".join(str(p) for p in first["loc"])
    return MappingError(f"{field}: {first['msg']}")


def map_ticket(record: dict[str, Any], mapping: Mapping, *, received_at: datetime) -> Ticket:
    """The canonical ticket a decoded record describes. Raises `MappingError` with a reason a person can act on."""
    values: dict[str, Any] = {"source_type": mapping.source_type, **mapping.defaults}
    values.update(_mapped_fields(record, mapping.fields, mapping.value_maps, {"$received_at": received_at}))
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
    if values.get("category") is not None:
        values.setdefault("classified_by", ClassifiedBy.SOURCE)  # the upstream's people chose it: rules keep it
    try:
        return Ticket.model_validate(values)
    except ValidationError as exc:
        raise _validation_error(exc) from None


def map_ci(record: dict[str, Any], mapping: CIMapping) -> ConfigurationItem:
    """The canonical configuration item a decoded record describes. Raises `MappingError`.

    Every attribute the record has is kept, also when it is empty (None, []): a value that disappeared upstream
    then clears the CI's, since a later landing merges its attributes into those already stored. An attribute
    whose path the record does not have at all is left out (the source does not say), so it keeps its value.
    """
    values: dict[str, Any] = {**mapping.defaults}
    values.update(_mapped_fields(record, mapping.fields, mapping.value_maps))
    missing = [field for field in mapping.required if values.get(field) in (None, "")]
    if missing:
        raise MappingError(f"record has no {', '.join(missing)} (required by the CI mapping)")
    attributes = {name: _get(record, path) for name, path in mapping.attributes.items()}
    attributes = {name: value for name, value in attributes.items() if value is not _MISSING}
    values["attributes"] = {**values.get("attributes", {}), **to_jsonable_python(attributes)}
    if values.get("name") is not None:
        values["name"] = _clip(" ".join(str(values["name"]).split()), CI_NAME_MAX)
    try:
        return ConfigurationItem.model_validate(values)
    except ValidationError as exc:
        raise _validation_error(exc) from None


def _title(title: Any) -> str:
    text = collapse_spaces(str(title)) if title else ""  # keeps an ideographic space (U+3000) as written
    if not text:
        return "(no subject)"
    return _clip(text, TITLE_MAX)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
