"""Comments carried inside an upstream ticket record (GLPI followups, solutions, tasks; Solman notes).

The source's decoder puts them under ``comments``: ``[{"external_id", "body", "public", "author",
"created_at"}]``. After the batch's tickets are written, each comment not yet known by its identity
`(system, external_id)` is added once; one the hub pushed there itself (recorded with the identity the
upstream gave it) is recognised and not added again — a comment never bounces back as a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from itsm_core.models import Comment, RawRecord, utcnow
from itsm_core.store.bulk import insert_ignoring_conflicts, one_of
from itsm_core.store.comments import add_comments
from itsm_core.store.tables import CommentRefRow
from itsm_core.sync.intake import Disposition, MakeTicket, Triaged
from itsm_core.sync.propagate import Change

comment_refs = CommentRefRow.__table__


class RelatedRecords:
    """An `Intake` for plain sources: every record makes or updates its ticket; its comments follow."""

    def __init__(self, system: str) -> None:
        self.system = system

    @classmethod
    def for_source(cls, config: Any, source: Any) -> RelatedRecords:
        """The intake of a source whose records carry their comments (a kind's `intake`, `connectors/registry.py`)."""
        return cls(source.name)

    def triage(
        self, conn: Connection, items: Sequence[tuple[RawRecord, dict[str, Any]]], *, final: bool
    ) -> list[Disposition]:
        return [MakeTicket()] * len(items)

    def record(self, conn: Connection, items: Sequence[Triaged]) -> list[Change]:
        wanted = [
            (item.ticket_id, comment)
            for item in items
            if item.ticket_id is not None
            for comment in item.decoded.get("comments") or []
        ]
        known = known_comment_ids(conn, self.system, [c["external_id"] for _, c in wanted])
        new: dict[str, tuple[int, dict[str, Any]]] = {}
        for ticket_id, comment in wanted:
            if comment["external_id"] not in known:
                new.setdefault(comment["external_id"], (ticket_id, comment))  # a record landed twice in a batch
        ids = add_comments(
            conn,
            [
                (
                    ticket_id,
                    Comment(
                        body=c["body"],
                        author=c.get("author"),
                        public=c.get("public", True),
                        origin=self.system,
                        created_at=c.get("created_at") or utcnow(),
                    ),
                )
                for ticket_id, c in new.values()
            ],
        )
        remember_comment_ids(conn, self.system, zip(new, ids, strict=True))
        per_ticket: dict[int, list[int]] = {}
        for (ticket_id, _), comment_id in zip(new.values(), ids, strict=True):
            per_ticket.setdefault(ticket_id, []).append(comment_id)
        return [Change(t, comment_ids=tuple(c), origin=self.system) for t, c in per_ticket.items()]


def known_comment_ids(conn: Connection, system: str, external_ids: Sequence[str]) -> dict[str, int]:
    """external id → comment id, for those of `external_ids` already known in `system`."""
    if not external_ids:
        return {}
    query = select(comment_refs.c.external_id, comment_refs.c.comment_id).where(
        comment_refs.c.system == system, one_of(conn, comment_refs.c.external_id, set(external_ids))
    )
    return {external_id: comment_id for external_id, comment_id in conn.execute(query)}


def remember_comment_ids(conn: Connection, system: str, pairs: Any) -> None:
    """Record (external id, comment id) pairs: the comment's identity in `system`."""
    now = utcnow()
    rows = [{"system": system, "external_id": e, "comment_id": c, "created_at": now} for e, c in pairs]
    insert_ignoring_conflicts(conn, comment_refs, rows, ["system", "external_id"])
