"""Rows of the append-only audit trail (`audit_events`): who changed which field of which ticket or CI, when."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

Entity = Literal["ticket", "ci"]


def audit_event(
    entity: Entity,
    entity_id: int,
    field: str,
    old: Any,
    new: Any,
    actor: str,
    source: str | None,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One `audit_events` row; dates in the values become ISO strings (the values are JSON). `detail` says why,
    when the actor is the hub's own rules (the rule, the model's confidence, the candidates weighed)."""
    return {
        "at": at,
        "entity": entity,
        "entity_id": entity_id,
        "field": field,
        "old_value": _jsonable(old),
        "new_value": _jsonable(new),
        "actor": actor,
        "source": source,
        "detail": detail,
    }


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
