"""Checks the rule shapes share."""

from __future__ import annotations

from collections.abc import Iterable


def repeated(names: Iterable[str]) -> list[str]:
    """The names given more than once, sorted: rules, policies and agents are named once (the audit trail names
    them)."""
    seen: set[str] = set()
    twice: set[str] = set()
    for name in names:
        (twice if name in seen else seen).add(name)
    return sorted(twice)
