"""The organisation's rules, compiled once per run and applied to every mapped ticket of a batch.

Today: ITIL priority from impact × urgency, and the condition language (`conditions.py`) that classification,
routing and SLA policies will match tickets with.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsm_core.models import Ticket
from itsm_core.rules.priority import PriorityMatrix


@dataclass(frozen=True)
class CompiledRules:
    priority: PriorityMatrix

    @classmethod
    def compile(cls, config: object) -> CompiledRules:
        """From the config's `rules:` section (an `itsm_core.config.RulesConfig`)."""
        return cls(priority=config.priority)  # type: ignore[attr-defined]

    def apply(self, ticket: Ticket) -> Ticket:
        """The ticket with what the rules decide filled in. Values the source set explicitly are kept."""
        if ticket.priority is None:
            return ticket.model_copy(update={"priority": self.priority.priority(ticket.impact, ticket.urgency)})
        return ticket
