"""The shapes of the `rules:` section, as written in YAML: classification rules, models, routing, groups, agents.

Validated by pydantic when the config is read, so a mistake is reported with its key before any ticket is touched.
`itsm_core/rules/engine.py` compiles them once per run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from itsm_core.rules._validate import repeated
from itsm_core.rules.conditions import Condition
from itsm_core.rules.priority import PriorityMatrix
from itsm_core.rules.sla import SlaConfig

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$"
#: What classification rules may set, and what a model may predict.
CLASSIFIED_FIELDS = ("category", "subcategory", "intent", "impact", "urgency")
MODEL_TARGETS = ("category", "subcategory", "intent", "impact", "urgency")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassificationRule(_Strict):
    """When the condition holds, set these fields (unless a person or the source already set them).

    Rules are ordered: each field takes its value from the first matching rule that sets it, so a broad rule
    placed after a narrow one only fills what the narrow one left.
    """

    name: str = Field(pattern=_NAME)
    when: Condition
    set: dict[str, Any] = Field(min_length=1)

    @field_validator("set")
    @classmethod
    def _known_fields(cls, values: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(values) - set(CLASSIFIED_FIELDS))
        if unknown:
            raise ValueError(f"cannot set {', '.join(unknown)}; a rule sets {', '.join(CLASSIFIED_FIELDS)}")
        for name in ("impact", "urgency"):
            if name in values and (not isinstance(values[name], int) or values[name] < 1):
                raise ValueError(f"{name} must be a level 1 or more (1 is the highest)")
        for name in ("category", "subcategory", "intent"):
            if name in values and (not isinstance(values[name], str) or not values[name].strip()):
                raise ValueError(f"{name} must be a non-empty text")
        return values


class ModelSpec(_Strict):
    """A trained text classifier (`itsm classify train`) for one field, used where no rule decided it."""

    target: str = "category"
    path: Path = Field(description="the model file; relative to the config file")
    min_confidence: float = Field(default=0.6, gt=0, le=1, description="below this, the prediction is not used")

    @field_validator("target")
    @classmethod
    def _known_target(cls, target: str) -> str:
        if target not in MODEL_TARGETS:
            raise ValueError(f"a model predicts one of {', '.join(MODEL_TARGETS)}")
        return target


class RoutingRule(_Strict):
    """When the condition holds, the ticket goes to `group`; `skills` are what its agent should have."""

    name: str = Field(pattern=_NAME)
    when: Condition
    group: str = Field(min_length=1, max_length=200)
    skills: list[str] = Field(default_factory=list)


class Absence(_Strict):
    """A period an agent takes no tickets: dates are whole days (end included); datetimes are exact (UTC if no
    zone is given, end excluded)."""

    start: date | datetime
    end: date | datetime

    @model_validator(mode="after")
    def _ordered(self) -> Absence:
        if self.bounds()[1] <= self.bounds()[0]:
            raise ValueError("an absence must end after it starts")
        return self

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in UTC. A whole-day absence is taken in UTC too: the hub has no agent's zone for it."""
        return _instant(self.start, end=False), _instant(self.end, end=True)

    def covers(self, at: datetime) -> bool:
        start, end = self.bounds()
        return start <= at < end


def _instant(value: date | datetime, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    day = date.fromordinal(value.toordinal() + 1) if end else value
    return datetime.combine(day, time(), tzinfo=UTC)


class Agent(_Strict):
    name: str = Field(min_length=1, max_length=320, description="as the ticket's assignee: a login or an address")
    skills: list[str] = Field(default_factory=list)
    calendar: str | None = Field(default=None, description="working hours: a name in `calendars:`; none = always")
    absences: list[Absence] = Field(default_factory=list)


class Group(_Strict):
    auto_assign: bool = Field(default=True, description="pick an agent within the group, or leave it to the group")
    agents: list[Agent] = Field(default_factory=list)

    @field_validator("agents")
    @classmethod
    def _unique(cls, agents: list[Agent]) -> list[Agent]:
        twice = repeated(agent.name for agent in agents)
        if twice:
            raise ValueError(f"agent listed twice: {', '.join(twice)}")
        return agents


class RulesConfig(_Strict):
    """The `rules:` section. Everything is optional: with nothing configured, only the priority matrix runs."""

    priority: PriorityMatrix = Field(default_factory=PriorityMatrix)
    classification: list[ClassificationRule] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)
    triage_group: str | None = Field(
        default=None, description="the queue of tickets whose category neither a rule nor a sure model gives"
    )
    routing: list[RoutingRule] = Field(default_factory=list)
    fallback_group: str | None = Field(default=None, description="the queue of tickets no routing rule matches")
    groups: dict[str, Group] = Field(default_factory=dict)
    requester_groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="groups of requesters conditions can name (field requester_groups): each a list of addresses "
        "(ceo@example.com) or domains (@board.example.com, its subdomains too); added to the groups a source names",
    )
    sla: SlaConfig = Field(default_factory=SlaConfig)
    load_weights: dict[int, float] | None = Field(
        default=None,
        description="an open ticket's weight in an agent's load, per priority; default: the most urgent priority "
        "weighs as many as there are priorities, the least urgent 1",
    )

    @field_validator("classification", "routing")
    @classmethod
    def _unique_names(cls, rules: list[Any]) -> list[Any]:
        twice = repeated(rule.name for rule in rules)
        if twice:
            raise ValueError(f"rule name used twice: {', '.join(twice)} (the audit trail names rules)")
        return rules

    @field_validator("requester_groups")
    @classmethod
    def _addresses(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, members in groups.items():
            wrong = [m for m in members if "@" not in m or m.strip() != m or not m.rpartition("@")[2]]
            if wrong:
                raise ValueError(
                    f"requester group '{name}': {', '.join(map(repr, wrong))} is neither an address "
                    "(someone@example.com) nor a domain (@example.com)"
                )
        return groups

    @field_validator("models")
    @classmethod
    def _one_model_per_target(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        twice = repeated(model.target for model in models)
        if twice:
            raise ValueError(f"two models predict {', '.join(twice)}; keep one per field")
        return models

    @model_validator(mode="after")
    def _levels_in_matrix(self) -> RulesConfig:
        for rule in self.classification:
            for name, levels in (("impact", self.priority.impact_levels), ("urgency", self.priority.urgency_levels)):
                level = rule.set.get(name)
                if level is not None and level > levels:
                    raise ValueError(f"rule '{rule.name}' sets {name} {level}; the priority matrix has 1..{levels}")
        return self

    def agent_names(self) -> set[str]:
        """Every agent of every group: the desk, as SLA clocks tell its replies from the requester's side."""
        return {agent.name for group in self.groups.values() for agent in group.agents}

    def calendars_used(self) -> dict[str, str]:
        """Every calendar name the section uses → the key that names it."""
        used = {
            agent.calendar: f"rules.groups.{name}.agents[{i}].calendar"
            for name, group in self.groups.items()
            for i, agent in enumerate(group.agents)
            if agent.calendar
        }
        used.update(
            {name: f"rules.sla.tenant_calendars.{tenant}" for tenant, name in self.sla.tenant_calendars.items()}
        )
        if self.sla.default_calendar:
            used[self.sla.default_calendar] = "rules.sla.default_calendar"
        for kind, items in (("policies", self.sla.policies), ("olas", self.sla.olas)):
            used.update(
                {item.calendar: f"rules.sla.{kind}[{i}].calendar" for i, item in enumerate(items) if item.calendar}
            )
        return used
