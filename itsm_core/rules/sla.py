"""SLA clocks: a pure function of a ticket's history, its policies and their business calendars.

A clock is never a counter kept up to date: `compute_clocks` replays the ticket's history (status, priority,
group… as the audit trail has them, and its first response) every time, so changing a policy or a calendar
and recomputing gives the right answer for every ticket, open or closed.

- **Policies** (`rules.sla.policies`) are tried in order; the first whose condition holds for the ticket *as it
  was at that moment* is in force. Its `calendar` (a name in `calendars:`; none = 24×7) says which time counts.
- **Metrics**: ``first_response`` (created → the first public comment that is not the requester's, or the first
  move to in progress / pending / resolved) and ``resolution`` (created → resolved; counting stops while the
  status is one of `pause_statuses`, default pending, and while resolved; a reopened ticket's clock goes on).
  ``next_update`` (optional) is the longest silence towards the requester: business time since the last public
  reply from the desk or status change. OLAs (`rules.sla.olas`) measure the time with one group (resolution).
- **Targets** follow the policy in force at the end: a ticket raised from P3 to P1 keeps the time it has used and
  gets P1's target. The time used is counted, piece by piece, in the calendar of the policy in force then.
- **Due time** = where the remaining target falls in the calendar from now (while running; none while paused).

Everything here is pure and fast (the calendars answer in microseconds); `itsm_core/sync/sla_check.py` reads
histories in batches, stores the clocks and fires warnings and escalations once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from itsm_core.calendars import BusinessCalendar, Calendar
from itsm_core.rules._validate import repeated
from itsm_core.rules.conditions import Condition, Predicate, RequesterGroups, compile_condition, record_view

METRICS = ("first_response", "resolution", "next_update")
ALWAYS = "24x7"
STOPPED = frozenset({"resolved", "closed", "cancelled"})  # the resolution clock is not running
FINAL = frozenset({"closed", "cancelled"})  # and cannot run again
#: What stopped a first-response clock, when a reply did.
DESK_REPLY = "the desk's first public reply"
RESPONDED = frozenset({"in_progress", "pending", "resolved", "closed"})
#: The fields whose history the clocks replay (a policy may match on them).
TRACKED = ("status", "priority", "impact", "urgency", "category", "assignment_group", "assignee")

_DURATION = re.compile(r"^\s*(-?)\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")


def parse_duration(text: str | int | float) -> float:
    """`15m`, `4h`, `1.5h`, `2d` (= 48 h of counted time), `-1h` → seconds; a bare number is seconds."""
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a duration; write e.g. 15m, 4h, 2d (or -1h for before)")
    sign, amount, unit = match.groups()
    seconds = float(amount) * {"m": 60, "h": 3600, "d": 86400}[unit]
    return -seconds if sign else seconds


Duration = float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Targets(_Strict):
    first_response: Duration | None = None
    resolution: Duration | None = None
    next_update: Duration | None = Field(default=None, description="the longest silence towards the requester")

    @field_validator("first_response", "resolution", "next_update", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None:
            return None
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("a target must be longer than zero")
        return seconds


class Policy(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    when: Condition | None = Field(default=None, description="none: every ticket (a catch-all, put it last)")
    calendar: str | None = Field(
        default=None,
        description="a name in calendars:, or 24x7 (every hour counts, whatever the tenant); none = the ticket's "
        "tenant's calendar (tenant_calendars), else default_calendar, else 24x7",
    )
    targets: Targets


class Ola(_Strict):
    """An operational-level agreement: how long a ticket may stay with one internal group."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    group: str
    calendar: str | None = None
    resolution: Duration

    @field_validator("resolution", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("a target must be longer than zero")
        return seconds


class Action(_Strict):
    """What an escalation does: tell people, hand the ticket to a group, or raise its priority."""

    notify: str | None = Field(default=None, description="who to tell (an alert rule name or an address)")
    reassign: str | None = Field(default=None, description="the group the ticket goes to")
    raise_priority: int | None = Field(default=None, ge=1, description="how many levels more urgent")

    @model_validator(mode="after")
    def _one(self) -> Action:
        given = [name for name in ("notify", "reassign", "raise_priority") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("an action is exactly one of notify, reassign, raise_priority")
        return self


class Escalation(_Strict):
    """A level: when the metric's used time reaches its target plus `at` (negative: before the due time)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    metric: Literal["first_response", "resolution"] = "resolution"
    at: Duration = 0.0
    actions: list[Action] = Field(min_length=1)

    @field_validator("at", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)


class SlaConfig(_Strict):
    """The `rules.sla` section. No policies: no clocks."""

    pause_statuses: list[str] = Field(default_factory=lambda: ["pending"])
    warn_at: list[int] = Field(default_factory=lambda: [50, 75, 90], description="percent of the target used")
    policies: list[Policy] = Field(default_factory=list)
    olas: list[Ola] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    tenant_calendars: dict[str, str] = Field(
        default_factory=dict,
        description="tenant → a name in calendars:, for policies that name no calendar (each site its own hours)",
    )
    default_calendar: str | None = Field(
        default=None, description="for policies that name no calendar, on tickets whose tenant has none; none: 24x7"
    )

    @field_validator("warn_at")
    @classmethod
    def _percent(cls, values: list[int]) -> list[int]:
        if any(not 0 < v < 100 for v in values):
            raise ValueError("warnings are percentages between 0 and 100 (100 % is the breach)")
        return sorted(set(values))

    @field_validator("pause_statuses")
    @classmethod
    def _statuses(cls, values: list[str]) -> list[str]:
        allowed = {"new", "assigned", "in_progress", "pending"}
        wrong = sorted(set(values) - allowed)
        if wrong:
            raise ValueError(f"cannot pause on {', '.join(wrong)}; pause on any of {', '.join(sorted(allowed))}")
        return values

    @field_validator("policies", "olas", "escalations")
    @classmethod
    def _unique(cls, items: list[Any]) -> list[Any]:
        twice = repeated(item.name for item in items)
        if twice:
            raise ValueError(f"name used twice: {', '.join(twice)} (the audit trail names them)")
        return items


# --- the clock ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A stretch of the ticket's life with one status and policy: how much of it counted, and why not the rest."""

    start: datetime
    end: datetime
    status: str
    policy: str | None
    counted: float  # seconds that counted for resolution
    paused: bool


@dataclass
class Clock:
    """One metric of one ticket, as of `at`."""

    metric: str  # first_response, resolution, ola:GROUP
    policy: str
    calendar: str
    target: float
    used: float
    state: Literal["running", "paused", "met", "breached"]
    started_at: datetime
    stopped_at: datetime | None = None
    due_at: datetime | None = None
    breached_at: datetime | None = None
    stopped_by: str | None = None  # what stopped it, for people: "status resolved", "the desk's first public reply"
    pieces: list[Piece] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.target if self.target else 0.0


@dataclass(frozen=True)
class Change:
    """One change in the ticket's history, as the audit trail has it (a creation's values have old None)."""

    at: datetime
    field: str
    old: Any
    new: Any


class SlaRules:
    """The `rules.sla` section compiled: policy conditions to closures, calendars compiled."""

    def __init__(
        self,
        config: SlaConfig,
        calendars: Mapping[str, BusinessCalendar],
        requester_groups: RequesterGroups | None = None,
    ) -> None:
        self.config = config
        self.requester_groups = requester_groups or RequesterGroups()
        self.policies: list[tuple[Policy, Predicate]] = [
            (p, compile_condition(p.when) if p.when is not None else _always) for p in config.policies
        ]
        self.calendars: dict[str, BusinessCalendar] = {ALWAYS: Calendar.always().compile(), **calendars}
        self.pause = frozenset(config.pause_statuses)
        self._with_calendar: dict[tuple[str, str], Policy] = {}

    @property
    def active(self) -> bool:
        return bool(self.config.policies or self.config.olas)

    def calendar(self, name: str | None) -> BusinessCalendar:
        return self.calendars[name or ALWAYS]

    def policy_for(self, view: Mapping[str, Any]) -> Policy | None:
        for policy, matches in self.policies:
            if matches(view):
                return policy
        return None

    def _in_calendar(self, policy: Policy | None, tenant_calendar: str | None) -> Policy | None:
        """The policy with the tenant's calendar when it names none itself (made once per pair)."""
        if policy is None or policy.calendar is not None or tenant_calendar is None:
            return policy
        key = (policy.name, tenant_calendar)
        if key not in self._with_calendar:
            self._with_calendar[key] = policy.model_copy(update={"calendar": tenant_calendar})
        return self._with_calendar[key]

    def compute(
        self,
        ticket: Mapping[str, Any],
        changes: Sequence[Change],
        now: datetime,
        first_response_at: datetime | None = None,
        updates: Sequence[datetime] = (),
    ) -> list[Clock]:
        """The ticket's clocks as of `now`. `ticket` is the stored row (current values); `changes` its history
        of `TRACKED` fields in time order, including the values it was created with (at its creation time);
        `first_response_at` the first public reply from the desk (see `sla_check.replies`), `updates` all of them
        (for ``next_update``; status changes count as updates too)."""
        states = _states(ticket, changes, now)
        if states[0][2]["status"] in STOPPED:  # it came in resolved or closed: its life before is unknown
            return []
        clocks: list[Clock] = []
        tenant_calendar = self.config.tenant_calendars.get(ticket.get("tenant") or "", self.config.default_calendar)
        policies = [
            self._in_calendar(self.policy_for(record_view(state, self.requester_groups)), tenant_calendar)
            for _, _, state in states
        ]
        last = policies[-1] if policies else None
        if last is not None and last.targets.resolution is not None:
            clocks.append(self._resolution(states, policies, last, now))
        if last is not None and last.targets.next_update is not None:
            clocks.append(self._next_update(states, last, now, updates))
        replied = first_response_at if first_response_at is not None and first_response_at <= now else None
        responded, responded_by = _responded_at(states, replied)
        if responded is None and states[-1][2]["status"] in STOPPED:  # cancelled unanswered: it stops there too
            responded = _stopped_at(states, lambda state: state["status"] in STOPPED)
            responded_by = f"{_status_at(states, responded)} without an answer"
        if responded is not None:  # a reply stamped before the creation (two systems' clocks): at the creation
            responded = max(responded, states[0][0])
        at_response = last
        if responded is not None:  # a stopped clock keeps the target of the policy in force when it stopped
            at_response = [p for (s, _, _), p in zip(states, policies, strict=True) if s <= responded][-1] or last
        if at_response is not None and at_response.targets.first_response is not None:
            clocks.append(self._first_response(states[0][0], at_response, now, responded))
            clocks[-1].stopped_by = responded_by
        for ola in self.config.olas:
            clock = self._ola(states, ola, now)
            if clock is not None:
                clocks.append(clock)
        return clocks

    def _resolution(
        self, states: list[tuple[datetime, datetime, dict[str, Any]]], policies: list[Policy | None],
        last: Policy, now: datetime,
    ) -> Clock:  # fmt: skip
        target = float(last.targets.resolution or 0)
        used = 0.0
        pieces: list[Piece] = []
        breached_at = None
        for (start, end, state), policy in zip(states, policies, strict=True):
            status = state["status"]
            counting = status not in STOPPED and status not in self.pause
            calendar = self.calendar(policy.calendar if policy else last.calendar)
            counted = calendar.business_seconds(start, end) if counting and end > start else 0.0
            if counting and breached_at is None and used + counted >= target > used:
                breached_at = calendar.add_business_seconds(start, target - used)
            used += counted
            pieces.append(Piece(start, end, status, policy.name if policy else None, counted, not counting))
        status = states[-1][2]["status"]
        stopped_at = _stopped_at(states, lambda state: state["status"] in STOPPED) if status in STOPPED else None
        clock = Clock("resolution", last.name, last.calendar or ALWAYS, target, used, "running", states[0][0])
        clock.pieces, clock.breached_at, clock.stopped_at = pieces, breached_at, stopped_at
        clock.stopped_by = _status_at(states, stopped_at) if stopped_at is not None else None
        if status in STOPPED:
            clock.state = "breached" if used > target else "met"
        else:
            calendar = self.calendar(last.calendar)
            clock.state = "paused" if status in self.pause else ("breached" if used > target else "running")
            if clock.state != "paused":
                clock.due_at = breached_at or calendar.add_business_seconds(now, max(0.0, target - used))
        return clock

    def _next_update(
        self, states: list[tuple[datetime, datetime, dict[str, Any]]], policy: Policy, now: datetime,
        updates: Sequence[datetime],
    ) -> Clock:  # fmt: skip
        """The silence towards the requester: business time since the last update (a public reply from the desk
        or a status change), counted while the ticket is open and not paused. Breached once any silence went past
        the target; `used` is the current silence, `due_at` when it reaches the target."""
        target = float(policy.targets.next_update or 0)
        calendar = self.calendar(policy.calendar)
        created = states[0][0]
        moved = {start for (start, _, state), (_, _, before) in zip(states[1:], states, strict=False)
                 if state["status"] != before["status"]}  # fmt: skip
        marks = {t for t in updates if created < t <= now} | moved
        silence, breached_at, silence_breach = 0.0, None, None
        pieces: list[Piece] = []
        for start, end, state in states:
            counting = state["status"] not in STOPPED and state["status"] not in self.pause
            cuts = [start, *sorted(m for m in marks if start < m < end), end]
            counted_here = 0.0
            for a, b in pairwise(cuts):
                if a in marks:  # an update: the silence starts again
                    silence, silence_breach = 0.0, None
                if counting and b > a:
                    counted = calendar.business_seconds(a, b)
                    if silence + counted > target >= silence:
                        silence_breach = calendar.add_business_seconds(a, target - silence)
                        breached_at = breached_at or silence_breach
                    silence += counted
                    counted_here += counted
            pieces.append(Piece(start, end, state["status"], policy.name, counted_here, not counting))
        if states[-1][1] in marks:  # an update at the very end
            silence, silence_breach = 0.0, None
        status = states[-1][2]["status"]
        clock = Clock("next_update", policy.name, policy.calendar or ALWAYS, target, silence, "running", created)
        clock.pieces, clock.breached_at = pieces, breached_at
        if status in STOPPED:
            clock.state = "breached" if breached_at else "met"
            clock.stopped_at = _stopped_at(states, lambda state: state["status"] in STOPPED)
            clock.stopped_by = _status_at(states, clock.stopped_at)
        elif status in self.pause:
            clock.state = "paused"
        else:
            clock.state = "breached" if breached_at else "running"
            clock.due_at = silence_breach or calendar.add_business_seconds(now, max(0.0, target - silence))
        return clock

    def _first_response(self, created: datetime, policy: Policy, now: datetime, responded_at: datetime | None) -> Clock:
        target = float(policy.targets.first_response or 0)
        calendar = self.calendar(policy.calendar)
        end = responded_at or now
        used = calendar.business_seconds(created, end) if end > created else 0.0
        clock = Clock("first_response", policy.name, policy.calendar or ALWAYS, target, used, "running", created)
        clock.stopped_at = responded_at
        if used >= target:
            clock.breached_at = calendar.add_business_seconds(created, target)
        if responded_at is not None:
            clock.state = "breached" if used > target else "met"
        else:
            clock.state = "breached" if used > target else "running"
            clock.due_at = calendar.add_business_seconds(created, target)
        return clock

    def _ola(self, states: list[tuple[datetime, datetime, dict[str, Any]]], ola: Ola, now: datetime) -> Clock | None:
        calendar = self.calendar(ola.calendar)
        used, started, breached_at, pieces = 0.0, None, None, []
        with_group = False
        for start, end, state in states:
            with_group = state.get("assignment_group") == ola.group
            counting = with_group and state["status"] not in STOPPED and state["status"] not in self.pause
            if with_group and started is None:
                started = start
            counted = calendar.business_seconds(start, end) if counting and end > start else 0.0
            if counting and breached_at is None and used + counted >= ola.resolution > used:
                breached_at = calendar.add_business_seconds(start, ola.resolution - used)
            used += counted
            if with_group:
                pieces.append(Piece(start, end, state["status"], ola.name, counted, not counting))
        if started is None:
            return None
        status = states[-1][2]["status"]
        clock = Clock(f"ola:{ola.group}", ola.name, ola.calendar or ALWAYS, ola.resolution, used, "running", started)
        clock.pieces, clock.breached_at = pieces, breached_at
        if not with_group or status in STOPPED:
            clock.state = "breached" if used > ola.resolution else "met"
            clock.stopped_at = _stopped_at(
                states, lambda state: state.get("assignment_group") != ola.group or state["status"] in STOPPED
            )
            clock.stopped_by = (
                f"handed to {_at(states, clock.stopped_at).get('assignment_group') or 'no group'}"
                if not with_group
                else _status_at(states, clock.stopped_at)
            )
        elif status in self.pause:
            clock.state = "paused"
        else:
            clock.state = "breached" if used > ola.resolution else "running"
            clock.due_at = breached_at or calendar.add_business_seconds(now, max(0.0, ola.resolution - used))
        return clock


def _responded_at(
    states: list[tuple[datetime, datetime, dict[str, Any]]], replied: datetime | None
) -> tuple[datetime | None, str | None]:
    """The first response and what it was: a reply to the requester (`replied`), or the first move out of
    new/assigned."""
    moved = next((stretch for stretch in states if stretch[2]["status"] in RESPONDED), None)
    if replied is not None and (moved is None or replied <= moved[0]):
        return replied, DESK_REPLY
    if moved is None:
        return None, None
    return moved[0], f"status {moved[2]['status']}"


def _at(states: list[tuple[datetime, datetime, dict[str, Any]]], moment: datetime) -> dict[str, Any]:
    """The ticket's values in the stretch that starts at (or contains) `moment`."""
    return next((state for start, end, state in states if start <= moment < end or start == moment), states[-1][2])


def _status_at(states: list[tuple[datetime, datetime, dict[str, Any]]], moment: datetime) -> str:
    return f"status {_at(states, moment)['status']}"


def _stopped_at(
    states: list[tuple[datetime, datetime, dict[str, Any]]], stopped: Callable[[dict[str, Any]], bool]
) -> datetime:
    """When a clock stopped for good: the start of the last run of stretches in which `stopped` holds (resolved
    then closed stopped at the resolution; handed to another group, then changed there, at the handover)."""
    since = states[-1][0]
    for start, _, state in reversed(states):
        if not stopped(state):
            break
        since = start
    return since


def _always(record: Mapping[str, Any]) -> bool:
    return True


def _states(
    ticket: Mapping[str, Any], changes: Iterable[Change], now: datetime
) -> list[tuple[datetime, datetime, dict[str, Any]]]:
    """The ticket's life as [start, end) stretches with the values in force, from creation to `now` (or to the
    moment it was resolved, closed or cancelled)."""
    created = ticket["created_at"]
    ordered = sorted((c for c in changes if c.at <= now), key=lambda c: c.at)  # as of now: none from after it
    state = dict(ticket)
    for name in TRACKED:  # before its first change, a field held that change's old value
        first = next((c for c in ordered if c.field == name), None)
        if first is not None:
            state[name] = first.old
    stretches: list[tuple[datetime, datetime, dict[str, Any]]] = []
    start = created
    for change in ordered:
        if change.at > start and state.get("status") is not None:
            stretches.append((start, change.at, dict(state)))
            start = change.at
        state[change.field] = change.new
        if state.get("status") in FINAL:
            break
    state["status"] = state.get("status") or "new"
    end = now if state["status"] not in STOPPED else start
    stretches.append((start, max(end, start), dict(state)))
    return stretches
