"""Routing within a group: which agent takes a ticket.

Among the group's agents who are on duty (inside their calendar's working hours, not absent), the order is:

1. most of the wanted skills (those the routing rule names);
2. least load: the agent's open tickets, each weighted by its priority (`Workload`);
3. round-robin: the agent whose last turn in this group is oldest (never = oldest of all);
4. the name, so that equal agents are always taken in the same order.

With nobody on duty the ticket stays with the group (its queue) and the audit trail says why; each cycle then
offers the waiting tickets to whoever has come on duty (`itsm_core.sync.decide.dispatch_waiting`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from itsm_core.rules.spec import Agent, Group


class WorkingHours(Protocol):
    def is_open(self, at: datetime) -> bool: ...


@dataclass
class Workload:
    """Open tickets per agent, weighted by priority, and each agent's last round-robin turn per group.

    Loaded once per batch (`itsm_core/sync/decide.py`) and kept up to date in memory as the batch assigns, so
    the tickets of one batch spread like tickets arriving one by one.
    """

    weights: Mapping[int, float]
    load: dict[str, float] = field(default_factory=dict)
    turns: dict[tuple[str, str], int] = field(default_factory=dict)  # (group, agent) → turn number
    taken: list[tuple[str, str, int]] = field(default_factory=list)  # turns given since loading: to write back
    _last: dict[str, int] = field(default_factory=dict)  # group → its latest turn (derived from `turns`)

    def weight(self, priority: int | None) -> float:
        return self.weights.get(priority, 1.0) if priority is not None else 1.0

    def add(self, agent: str, priority: int | None) -> None:
        self.load[agent] = self.load.get(agent, 0.0) + self.weight(priority)

    def remove(self, agent: str, priority: int | None) -> None:
        self.load[agent] = max(0.0, self.load.get(agent, 0.0) - self.weight(priority))

    def take_turn(self, group: str, agent: str) -> None:
        if not self._last:
            for (g, _), t in self.turns.items():
                self._last[g] = max(self._last.get(g, 0), t)
        turn = self._last.get(group, 0) + 1
        self._last[group] = turn
        self.turns[(group, agent)] = turn
        self.taken.append((group, agent, turn))


def default_weights(priorities: int) -> dict[int, float]:
    """Priority 1 weighs as many as there are priorities, the least urgent 1: a P1 counts 5× a P5 in a 1–5 matrix."""
    return {p: float(priorities + 1 - p) for p in range(1, priorities + 1)}


@dataclass(frozen=True)
class Pick:
    agent: str | None
    confidence: float
    detail: dict[str, Any]


@dataclass(frozen=True)
class Router:
    groups: Mapping[str, Group]
    calendars: Mapping[str, WorkingHours]
    _away_at: dict[tuple[str, datetime], str | None] = field(default_factory=dict, compare=False, repr=False)

    def agents_of(self, group: str) -> list[Agent]:
        spec = self.groups.get(group)
        return list(spec.agents) if spec is not None and spec.auto_assign else []

    def pick(self, group: str, skills: list[str], priority: int | None, workload: Workload, now: datetime) -> Pick:
        """The agent of `group` for a ticket wanting `skills`, with every candidate weighed (for the audit)."""
        candidates: list[dict[str, Any]] = []
        wanted = {skill.casefold() for skill in skills}
        for agent in self.agents_of(group):
            have = {skill.casefold() for skill in agent.skills}
            candidate: dict[str, Any] = {
                "agent": agent.name,
                "skills": len(wanted & have),
                "load": round(workload.load.get(agent.name, 0.0), 2),
                "turn": workload.turns.get((group, agent.name), 0),
            }
            key = (agent.name, now)
            if key not in self._away_at:  # one look at calendars and absences per agent and moment
                if len(self._away_at) > 10_000:
                    self._away_at.clear()
                self._away_at[key] = self._away(agent, now)
            away = self._away_at[key]
            if away:
                candidate["away"] = away
            candidates.append(candidate)
        on_duty = [c for c in candidates if "away" not in c]
        on_duty.sort(key=lambda c: (-c["skills"], c["load"], c["turn"], c["agent"]))
        detail: dict[str, Any] = {"group": group, "wanted_skills": sorted(wanted), "candidates": candidates}
        if not on_duty:
            detail["why"] = "nobody in the group is on duty" if candidates else "the group has no agents to pick from"
            return Pick(None, 0.0, detail)
        chosen = on_duty[0]
        workload.add(chosen["agent"], priority)
        workload.take_turn(group, chosen["agent"])
        confidence = chosen["skills"] / len(wanted) if wanted else 1.0
        detail["chosen"] = chosen["agent"]
        detail["why"] = _why(chosen, on_duty, bool(wanted))
        return Pick(chosen["agent"], confidence, detail)

    def _away(self, agent: Agent, now: datetime) -> str | None:
        for absence in agent.absences:
            if absence.covers(now):
                return f"absent until {absence.bounds()[1].isoformat()}"
        if agent.calendar is not None and not self.calendars[agent.calendar].is_open(now):
            return f"outside working hours ({agent.calendar})"
        return None


def _why(chosen: dict[str, Any], on_duty: list[dict[str, Any]], skills_wanted: bool) -> str:
    """Which criterion decided between the chosen agent and the runner-up."""
    if len(on_duty) == 1:
        return "the only agent on duty"
    runner_up = on_duty[1]
    if skills_wanted and chosen["skills"] != runner_up["skills"]:
        return "best skills match"
    if chosen["load"] != runner_up["load"]:
        return "least load"
    if chosen["turn"] != runner_up["turn"]:
        return "round-robin (longest since last ticket)"
    return "tie: first by name"
