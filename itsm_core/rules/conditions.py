"""The condition language of rules and policies: declarative in YAML, validated by pydantic, compiled once.

A condition is a leaf or a combination::

    all: [COND, ...]      every one holds (an empty list holds)
    any: [COND, ...]      at least one holds
    not: COND             it does not hold
    {field: NAME, OPERATOR: VALUE}

`field` names a canonical ticket field (``title``, ``category``, ``priority``…), a path into the custom fields
(``custom_fields.glpi_id``), or a derived field: ``text`` (title and description together), ``requester_domain``
(the part after @, lower-case), ``requester_groups`` (the groups the source names for the requester, plus those
the config's `requester_groups` puts the address in) and ``source`` (the source type). Callers may add their own
keys to the record (e.g. ``ci_classes``, the classes of the CIs linked to the ticket).

Operators (exactly one per leaf; text comparisons ignore case):

- ``equals``, ``in`` (a list), ``exists`` (true/false);
- ``contains`` (a substring of a text, or an element of a list), ``contains_any`` (any of several substrings),
  ``startswith``, ``regex`` (Python syntax, searched anywhere, case-insensitive);
- ``gt``, ``gte``, ``lt``, ``lte`` (numbers; a missing value never compares).

`compile_condition` turns a validated condition into a plain predicate over a mapping; regexes are compiled once,
so evaluating costs microseconds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, field_validator, model_validator

Predicate = Callable[[Mapping[str, Any]], bool]
OPERATORS = ("equals", "in", "exists", "contains", "contains_any", "startswith", "regex", "gt", "gte", "lt", "lte")
_MISSING = object()


class Leaf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    field: str = Field(min_length=1)
    equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    exists: bool | None = None
    contains: Any = None
    contains_any: list[str] | None = None
    startswith: str | None = None
    regex: str | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return pattern

    @model_validator(mode="after")
    def _one_operator(self) -> Leaf:
        given = [name for name in OPERATORS if getattr(self, "in_" if name == "in" else name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one operator for {self.field!r} (one of {', '.join(OPERATORS)})")
        return self

    @property
    def operator(self) -> tuple[str, Any]:
        for name in OPERATORS:
            value = getattr(self, "in_" if name == "in" else name)
            if value is not None:
                return name, value
        raise AssertionError("validated: one operator")


class All(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    all: list[Condition]


class Any_(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    any: list[Condition]


class Not(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    not_: Condition = Field(alias="not")


def _kind(data: Any) -> str:
    """Which shape a condition is, by its keys: so a mistake is reported against that shape only."""
    if isinstance(data, Mapping):
        for key in ("all", "any", "not"):
            if key in data:
                return key
        return "leaf"
    return {All: "all", Any_: "any", Not: "not"}.get(type(data), "leaf")


Condition = Annotated[
    Annotated[All, Tag("all")]
    | Annotated[Any_, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[Leaf, Tag("leaf")],
    Discriminator(_kind),
]
for _model in (All, Any_, Not):
    _model.model_rebuild()
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Condition)


def parse_condition(data: Any) -> All | Any_ | Not | Leaf:
    """A condition from its YAML form; raises pydantic's `ValidationError` naming the wrong key."""
    return _ADAPTER.validate_python(data)


def compile_condition(condition: All | Any_ | Not | Leaf) -> Predicate:
    """A predicate over a record (a mapping of field names to values, see `record_view`)."""
    if isinstance(condition, All | Any_):
        parts = [compile_condition(c) for c in (condition.all if isinstance(condition, All) else condition.any)]
        if len(parts) == 1:
            return parts[0]  # all/any of one is that one: no generator per evaluation
        if isinstance(condition, All):
            return lambda record: all(part(record) for part in parts)
        return lambda record: any(part(record) for part in parts)
    if isinstance(condition, Not):
        inner = compile_condition(condition.not_)
        return lambda record: not inner(record)
    return _leaf(condition)


class RequesterGroups:
    """Which requester groups an address is in, from the config: members are addresses (``ceo@example.com``) or
    domains (``@example.com``, which takes its subdomains too). Compiled once; a lookup is a few dict probes."""

    def __init__(self, groups: Mapping[str, Iterable[str]] | None = None) -> None:
        self.by_address: dict[str, set[str]] = {}
        self.by_domain: dict[str, set[str]] = {}
        for name, members in (groups or {}).items():
            for member in members:
                key = member.strip().lower()
                table = self.by_domain if key.startswith("@") else self.by_address
                table.setdefault(key.lstrip("@"), set()).add(name)

    def of(self, address: str) -> set[str]:
        address = address.strip().lower()
        found = set(self.by_address.get(address, ()))
        domain = address.rpartition("@")[2] if "@" in address else ""  # a login has no domain
        while domain and self.by_domain:
            found |= self.by_domain.get(domain, set())
            domain = domain.partition(".")[2]
        return found


_NO_GROUPS = RequesterGroups()


def record_view(ticket: Mapping[str, Any], requester_groups: RequesterGroups = _NO_GROUPS) -> dict[str, Any]:
    """A ticket (a dict of canonical fields) with the derived fields conditions may name."""
    view = dict(ticket)
    view["text"] = f"{ticket.get('title') or ''}\n{ticket.get('description') or ''}"
    requester = ticket.get("requester") or ""
    view["requester_domain"] = requester.rpartition("@")[2].lower() if "@" in requester else None
    named = (ticket.get("custom_fields") or {}).get("requester_groups") or []
    groups = {named} if isinstance(named, str) else set(named)
    view["requester_groups"] = sorted(groups | requester_groups.of(requester)) if requester else sorted(groups)
    view.setdefault("source", ticket.get("source_type"))
    return view


def _leaf(leaf: Leaf) -> Predicate:
    path = leaf.field.split(".")
    name, expected = leaf.operator

    def value_of(record: Mapping[str, Any]) -> Any:
        node: Any = record
        for step in path:
            if not isinstance(node, Mapping) or step not in node:
                return _MISSING
            node = node[step]
        return node

    test = _TESTS[name](expected)

    def predicate(record: Mapping[str, Any]) -> bool:
        value = value_of(record)
        if name == "exists":
            return (value is not _MISSING and value is not None) == expected
        if value is _MISSING or value is None:
            return False
        return test(value)

    return predicate


@functools.lru_cache(maxsize=2048)
def _fold(text: str) -> str:
    return text.casefold()


def _text(value: Any) -> str:
    # Every leaf on the same text folds it: cached (a str caches its hash), so a ticket's text is folded once.
    return _fold(str(getattr(value, "value", value)))  # enums compare by their value


def _equals(expected: Any) -> Callable[[Any], bool]:
    if isinstance(expected, str):
        wanted = expected.casefold()
        return lambda value: _text(value) == wanted
    return lambda value: value == expected


def _in(expected: list[Any]) -> Callable[[Any], bool]:
    tests = [_equals(item) for item in expected]
    return lambda value: any(test(value) for test in tests)


def _contains(expected: Any) -> Callable[[Any], bool]:
    needle = _text(expected)

    def test(value: Any) -> bool:
        if isinstance(value, list | tuple | set | frozenset):
            return any(_text(item) == needle for item in value)
        return needle in _text(value)

    return test


def _contains_any(expected: list[str]) -> Callable[[Any], bool]:
    # One alternation searched in C, rather than a Python loop over the needles.
    pattern = re.compile("|".join(re.escape(needle.casefold()) for needle in expected))
    return lambda value: pattern.search(_text(value)) is not None


def _regex(pattern: str) -> Callable[[Any], bool]:
    compiled = re.compile(pattern, re.IGNORECASE)
    return lambda value: compiled.search(str(value)) is not None


def _compare(operator: Callable[[float, float], bool]) -> Callable[[float], Callable[[Any], bool]]:
    def build(bound: float) -> Callable[[Any], bool]:
        def test(value: Any) -> bool:
            try:
                return operator(float(value), bound)
            except (TypeError, ValueError):
                return False

        return test

    return build


_TESTS: dict[str, Callable[[Any], Callable[[Any], bool]]] = {
    "equals": _equals,
    "in": _in,
    "exists": lambda expected: lambda value: True,  # decided in the predicate: it needs to see a missing value
    "contains": _contains,
    "contains_any": _contains_any,
    "startswith": lambda prefix: lambda value: _text(value).startswith(prefix.casefold()),
    "regex": _regex,
    "gt": _compare(lambda a, b: a > b),
    "gte": _compare(lambda a, b: a >= b),
    "lt": _compare(lambda a, b: a < b),
    "lte": _compare(lambda a, b: a <= b),
}


def describe_match(condition: All | Any_ | Not | Leaf, record: Mapping[str, Any]) -> list[str]:
    """In words, the leaves that make `condition` hold for `record` (for `itsm rules explain`): e.g.
    ``["text contains 'vpn'", "priority lte 2 (2)"]``; empty when it does not hold. Slow (compiles as it goes):
    for explanations, never for the batch path."""
    if isinstance(condition, All):
        parts = [describe_match(c, record) for c in condition.all]
        return [line for part in parts for line in part] if all(parts) or not parts else []
    if isinstance(condition, Any_):
        return next((part for c in condition.any if (part := describe_match(c, record))), [])
    if isinstance(condition, Not):
        return [] if compile_condition(condition.not_)(record) else [f"not ({_words(condition.not_)})"]
    if not _leaf(condition)(record):
        return []
    name, expected = condition.operator
    value = record
    for step in condition.field.split("."):
        value = value.get(step) if isinstance(value, Mapping) else None
    if name == "contains_any":
        text = _text(value)
        hit = next(needle for needle in expected if needle.casefold() in text)
        return [f"{condition.field} contains '{hit}'"]
    if name == "regex":
        found = re.search(expected, str(value), re.IGNORECASE)
        return [f"{condition.field} matches /{expected}/ ('{found.group(0) if found else ''}')"]
    shown = "" if name in ("equals", "contains", "startswith", "exists") else f" ({value})"
    return [f"{condition.field} {name} {expected!r}{shown}"]


def _words(condition: All | Any_ | Not | Leaf) -> str:
    if isinstance(condition, Leaf):
        name, expected = condition.operator
        return f"{condition.field} {name} {expected!r}"
    if isinstance(condition, Not):
        return f"not ({_words(condition.not_)})"
    parts = condition.all if isinstance(condition, All) else condition.any
    joiner = " and " if isinstance(condition, All) else " or "
    return joiner.join(_words(c) for c in parts)
