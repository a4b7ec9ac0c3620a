"""The organisation's rules compiled once per run, deciding a batch of tickets at a time.

For each ticket, in this order (each step sees what the steps before it decided):

1. **classification rules**, in their order: each field (category, subcategory, intent, impact, urgency) takes
   the value of the first matching rule that sets it;
2. **models**: a field no rule decided gets the trained model's label when its confidence reaches the model's
   `min_confidence`; below it the field stays empty, and a ticket left without a category goes to the
   `triage_group`, with the model's best guess in the audit trail;
3. **priority** from the impact × urgency matrix;
4. **routing**: the first matching routing rule's group (else `fallback_group`), then an agent of that group
   (`itsm_core/rules/routing.py`). Only open tickets are routed.

The rules only fill what is *free*: a field that is empty, or that the caller asks to decide again (`redo`:
a derived priority whose impact changed, a ticket leaving triage, a dry run). What a person or the source set
is never touched. `decide` is pure — it reads rows and returns decisions; `itsm_core/sync/decide.py` writes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from itsm_core.errors import ModelError
from itsm_core.models import OPEN_STATUSES
from itsm_core.rules.conditions import Predicate, RequesterGroups, compile_condition, record_view
from itsm_core.rules.priority import PriorityMatrix
from itsm_core.rules.routing import Router, WorkingHours, Workload, default_weights
from itsm_core.rules.spec import ModelSpec, RulesConfig

log = logging.getLogger("itsm.rules")

#: Everything the rules may decide, in the order they decide it.
DECIDED_FIELDS = ("category", "subcategory", "intent", "impact", "urgency", "priority", "assignment_group", "assignee")

# Who decided, as the audit trail's actor and the ticket's `decided_by`.
MATRIX = "rules:priority-matrix"
TRIAGE = "rules:triage"
FALLBACK = "rules:fallback-group"
GROUP_PICK = "rules:group-"  # + the group: an agent picked within a group already set (by a person, or queued)


@dataclass(frozen=True)
class Decided:
    """One field the rules set: its value, who decided (`by`), how sure, and why (for the audit trail)."""

    field: str
    value: Any
    by: str
    confidence: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Rule:
    name: str
    matches: Predicate
    sets: Mapping[str, Any]


@dataclass(frozen=True)
class _Route:
    name: str
    matches: Predicate
    group: str
    skills: list[str]


@dataclass(frozen=True)
class _Model:
    spec: ModelSpec
    model: Any  # itsm_core.rules.model.TextModel, loaded lazily (scikit-learn is slow to import)


class Rules:
    """The `rules:` section compiled: conditions to closures, models loaded, matrix and groups ready."""

    def __init__(
        self,
        config: RulesConfig,
        calendars: Mapping[str, WorkingHours] | None = None,
        *,
        load_model: Callable[[Path], Any] | None = None,
    ) -> None:
        self.config = config
        self.priority: PriorityMatrix = config.priority
        self.classification = [_Rule(r.name, compile_condition(r.when), r.set) for r in config.classification]
        self.routing = [_Route(r.name, compile_condition(r.when), r.group, r.skills) for r in config.routing]
        self.router = Router(config.groups, calendars or {})
        self.requester_groups = RequesterGroups(config.requester_groups)
        self.models, self.model_problems = _load_models(config.models, load_model)
        top = max(max(row) for row in self.priority.matrix)
        self.weights = {int(k): float(v) for k, v in (config.load_weights or default_weights(top)).items()}

    @classmethod
    def compile(cls, config: RulesConfig, calendars: Mapping[str, WorkingHours] | None = None) -> Rules:
        return cls(config, calendars)

    def view(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The ticket as conditions see it: with its derived fields (text, requester domain and groups…)."""
        return record_view(row, self.requester_groups)

    @property
    def routes(self) -> bool:
        return bool(self.routing or self.config.fallback_group or self.config.triage_group or self.config.groups)

    def agents(self) -> set[str]:
        return self.config.agent_names()

    def new_workload(self) -> Workload:
        return Workload(self.weights)

    def decide(
        self,
        tickets: Sequence[Mapping[str, Any]],
        workload: Workload,
        now: datetime,
        redo: Mapping[int, Iterable[str]] | None = None,
    ) -> dict[int, list[Decided]]:
        """What the rules set on each ticket (rows as stored, with `id`, `decided_by`, optionally `ci_classes`).

        `redo` names, per ticket id, fields to decide again although they hold a value (one the rules set).
        Only values that differ from the stored ones are returned.
        """
        redo = redo or {}
        views: list[dict[str, Any]] = []
        free: list[set[str]] = []
        decided: list[dict[str, Decided]] = []
        for row in tickets:
            again = set(redo.get(row["id"], ()))
            view = self.view(row)
            for name in again:
                view[name] = None
            views.append(view)
            free.append({name for name in DECIDED_FIELDS if view.get(name) is None})
            decided.append({})
        self._classify(views, free, decided)
        self._predict(views, free, decided)
        for view, open_fields, mine in zip(views, free, decided, strict=True):
            self._prioritise(view, open_fields, mine)
            self._route(view, open_fields, mine, workload, now)
        return {
            row["id"]: [d for d in mine.values() if d.value != row.get(d.field)]
            for row, mine in zip(tickets, decided, strict=True)
        }

    # --- the steps -------------------------------------------------------------------------------------------

    def _classify(self, views: list[dict[str, Any]], free: list[set[str]], decided: list[dict[str, Decided]]) -> None:
        if not self.classification:
            return
        for view, open_fields, mine in zip(views, free, decided, strict=True):
            for rule in self.classification:
                wanted = [name for name in rule.sets if name in open_fields and name not in mine]
                if wanted and rule.matches(view):
                    for name in wanted:
                        value = rule.sets[name]
                        mine[name] = Decided(name, value, f"rule:{rule.name}", 1.0, {"rule": rule.name})
                        view[name] = value

    def _predict(self, views: list[dict[str, Any]], free: list[set[str]], decided: list[dict[str, Decided]]) -> None:
        for target, loaded in self.models.items():
            todo = [i for i, view in enumerate(views) if target in free[i] and target not in decided[i]]
            if not todo:
                continue
            predictions = loaded.model.predict([views[i]["text"] for i in todo])
            by = f"model:{loaded.model.version}"
            for i, prediction in zip(todo, predictions, strict=True):
                confidence = round(float(prediction.confidence), 4)
                detail = {"model": loaded.model.version, "label": prediction.label, "confidence": confidence}
                value = self._value(target, prediction.label)
                if value is not None and confidence >= loaded.spec.min_confidence:
                    decided[i][target] = Decided(target, value, by, confidence, detail)
                    views[i][target] = value
                else:
                    detail["min_confidence"] = loaded.spec.min_confidence
                    views[i].setdefault("_unsure", {})[target] = detail

    def _value(self, target: str, label: str) -> Any:
        """A label as the field's value: impact and urgency are levels of the matrix (a label outside it: None)."""
        if target not in ("impact", "urgency"):
            return label
        levels = self.priority.impact_levels if target == "impact" else self.priority.urgency_levels
        return int(label) if label.isdigit() and 1 <= int(label) <= levels else None

    def _prioritise(self, view: dict[str, Any], free: set[str], mine: dict[str, Decided]) -> None:
        if "priority" not in free:
            return
        impact, urgency = view.get("impact"), view.get("urgency")
        value = self.priority.priority(impact, urgency)
        detail = {
            "impact": impact if impact is not None else f"{self.priority.default_impact} (default)",
            "urgency": urgency if urgency is not None else f"{self.priority.default_urgency} (default)",
        }
        mine["priority"] = Decided("priority", value, MATRIX, None, detail)
        view["priority"] = value

    def _route(
        self, view: dict[str, Any], free: set[str], mine: dict[str, Decided], workload: Workload, now: datetime
    ) -> None:
        if view.get("status") not in OPEN_STATUSES or not self.routes:
            return
        skills: list[str] = []
        if "assignment_group" in free:
            group = self._group(view, mine)
            if group is None:
                return
            skills = group.detail.get("skills", [])
            mine["assignment_group"] = group
            view["assignment_group"] = group.value
        elif view.get("assignment_group") is not None:
            skills = next(
                (r.skills for r in self.routing if r.group == view["assignment_group"] and r.matches(view)), []
            )
        if "assignee" not in free or view.get("assignment_group") is None:
            return
        group_name = view["assignment_group"]
        if not self.router.agents_of(group_name):
            return
        pick = self.router.pick(group_name, skills, view.get("priority"), workload, now)
        routed = mine.get("assignment_group")
        group_confidence = routed.confidence if routed is not None and routed.confidence is not None else 1.0
        detail = {**pick.detail, "rule": routed.detail.get("rule") if routed else None}
        if pick.agent is None:  # the ticket waits in the group's queue; say why where the trail shows the group
            if routed is not None:
                mine["assignment_group"] = Decided(
                    "assignment_group", routed.value, routed.by, routed.confidence, {**routed.detail, "agent": detail}
                )
            return
        confidence = round(group_confidence * pick.confidence, 4)
        detail["confidence"] = confidence
        by = routed.by if routed is not None else f"{GROUP_PICK}{group_name}"
        mine["assignee"] = Decided("assignee", pick.agent, by, confidence, detail)
        view["assignee"] = pick.agent

    def _group(self, view: dict[str, Any], mine: dict[str, Decided]) -> Decided | None:
        if view.get("category") is None and self.config.triage_group is not None:
            unsure = view.get("_unsure", {}).get("category")
            detail: dict[str, Any] = {"why": "no rule or sure model gives a category"}
            if unsure:
                detail["best_guess"] = unsure
            return Decided("assignment_group", self.config.triage_group, TRIAGE, None, detail)
        confidence = _confidence_of(view, mine)
        for route in self.routing:
            if route.matches(view):
                detail = {"rule": route.name, "skills": route.skills, "confidence": confidence}
                return Decided("assignment_group", route.group, f"route:{route.name}", confidence, detail)
        if self.config.fallback_group is not None:
            detail = {"why": "no routing rule matches", "confidence": confidence}
            return Decided("assignment_group", self.config.fallback_group, FALLBACK, confidence, detail)
        return None


def _confidence_of(view: Mapping[str, Any], mine: Mapping[str, Decided]) -> float:
    """How sure the classification a route is chosen on is: a model's probability, else 1 (a rule, a person)."""
    decided = mine.get("category")
    if decided is not None and decided.confidence is not None:
        return decided.confidence
    if decided is None and view.get("classified_by") == "model" and view.get("classification_confidence") is not None:
        return float(view["classification_confidence"])
    return 1.0


def _load_models(specs: Sequence[ModelSpec], load: Callable[[Path], Any] | None) -> tuple[dict[str, _Model], list[str]]:
    """The configured models that can be loaded; a missing one is reported, and its field left to rules/triage."""
    if not specs:
        return {}, []
    if load is None:
        from itsm_core.rules.model import TextModel

        load = TextModel.load
    models: dict[str, _Model] = {}
    problems: list[str] = []
    for spec in specs:
        try:
            models[spec.target] = _Model(spec, load(spec.path))
        except ModelError as exc:
            problems.append(str(exc))
            log.warning("%s; tickets are classified by the rules alone until then", exc)
    return models, problems
