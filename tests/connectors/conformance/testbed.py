"""What the conformance suite needs of a kind's upstream: a `Testbed` makes one, fills it and looks into it.

Each registered kind has one, found by the suite as ``testbeds/<kind>.py`` (its class `TESTBED`) or, for a kind
shipped outside this repository, through its `ConnectorKind.testbed` (``"module:attr"``). The suite builds the
source's config from `source()`, syncs it with the flows' own page task and checks the contract
(`connectors/base.py`) on what comes back; the testbed only speaks the upstream's own protocol.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

#: The name of the source every testbed's config gives (`source()`).
SOURCE = "upstream"


class Testbed(ABC):
    """One upstream of one kind, under `base` (a fresh folder of its own); `close` tears it down."""

    def __init__(self, base: Path) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def source(self, page_size: int) -> dict[str, Any]:
        """The `sources:` entry (as written in itsm.yaml) of a source named `SOURCE` reading this upstream, in
        pages of `page_size` records."""

    @abstractmethod
    def add_tickets(self, count: int) -> None:
        """`count` new tickets upstream, each with its own title and text; one record each."""

    @abstractmethod
    def add_unreadable(self) -> None:
        """One record the connector fetches but whose payload its `decode` refuses with `ParseError`."""

    def close(self) -> None:  # noqa: B027 (most testbeds are folders)
        """Stop what `__init__` started."""

    # --- two-way kinds only ----------------------------------------------------------------------------------

    def comment_count(self, external_id: str) -> int:
        """How many comments (followups, notes) the upstream ticket `external_id` has."""
        raise NotImplementedError(f"{type(self).__name__} is for a read-only kind")

    # --- kinds that find purges (`reconciles`) ---------------------------------------------------------------

    def purge(self, external_id: str) -> None:
        """Delete the upstream ticket `external_id` for good, as an administrator would."""
        raise NotImplementedError(f"{type(self).__name__} is for a kind that cannot tell a purge")
