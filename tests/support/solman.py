"""A hub synced with the Solman simulator, driven as plain Python (the flows' own page task and push, no Prefect)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, select

from connectors.solman._ict import system_guid
from connectors.solman.push import SolmanWriter
from flows.outbound import DeliveryReport, deliver_linked
from flows.runtime import change_ticket
from itsm_core.config import HubConfig, parse_config
from itsm_core.models import Comment
from itsm_core.store import Store
from itsm_core.store.comments import add_comments
from itsm_core.store.tables import AttachmentBlobRow, AttachmentRow, CommentRow, ExternalRefRow, TicketRow
from itsm_core.store.tickets import change_status
from itsm_core.sync.batch import BatchReport
from simulators.solman.simulator import SolmanSimulator
from tests.support.glpi import pull

SOURCE = "sap"


def solman_source(sim: SolmanSimulator, **options: Any) -> dict[str, Any]:
    """A `sources:` entry reading `sim` (ICT unless `backend: odata`); the simulator forwards its incidents to it."""
    sim.forward_to = system_guid(options.get("name", SOURCE))
    return {"name": SOURCE, "kind": "solman", "url": sim.origin, "user": sim.user, "password": sim.password,
            "sap_client": sim.sap_client, "page_size": 10, **options}  # fmt: skip


@dataclass
class SolmanHub:
    sim: SolmanSimulator
    config: HubConfig
    store: Store

    @classmethod
    def start(cls, sim: SolmanSimulator, database_url: str, base_dir: Path, **options: Any) -> SolmanHub:
        import yaml

        text = yaml.safe_dump({"database_url": database_url, "sources": [solman_source(sim, **options)]})
        (base_dir / "itsm.yaml").write_text(text, encoding="utf-8")
        store = Store(database_url)
        store.upgrade()
        return cls(sim, parse_config(text, base_dir=base_dir), store)

    def sync(self) -> BatchReport:
        return pull(self.config, self.store, source=SOURCE)

    def push(self) -> DeliveryReport:
        writer = SolmanWriter(self.config.source(SOURCE))
        try:
            return deliver_linked(self.store, SOURCE, writer)
        finally:
            writer.close()

    def ticket_id(self, guid: str) -> int:
        refs = ExternalRefRow.__table__
        with self.store.connect() as conn:
            query = select(refs.c.ticket_id).where(refs.c.system == SOURCE, refs.c.external_id == guid)
            return conn.execute(query).scalar_one()

    def ticket(self, guid: str) -> dict[str, Any]:
        tickets = TicketRow.__table__
        with self.store.connect() as conn:
            return dict(conn.execute(select(tickets).where(tickets.c.id == self.ticket_id(guid))).mappings().one())

    def comments(self, guid: str) -> list[str]:
        comments = CommentRow.__table__
        with self.store.connect() as conn:
            query = select(comments.c.body).where(comments.c.ticket_id == self.ticket_id(guid))
            return list(conn.execute(query.order_by(comments.c.id)).scalars())

    def attachments(self, guid: str) -> list[Any]:
        """The ticket's attachments with their content, in the order they were stored."""
        files, blobs = AttachmentRow.__table__, AttachmentBlobRow.__table__
        query = (
            select(files.c.name, files.c.content_type, blobs.c.content)
            .join(blobs, blobs.c.sha256 == files.c.sha256)
            .where(files.c.ticket_id == self.ticket_id(guid))
            .order_by(files.c.id)
        )
        with self.store.connect() as conn:
            return [SimpleNamespace(name=n, content_type=t, content=bytes(c)) for n, t, c in conn.execute(query)]

    def change(self, guid: str, *, status: str | None = None, comment: str | None = None) -> None:
        """A person's change in the hub, queued for Solman as the CLI queues it."""

        def edit(conn: Connection, ticket_id: int) -> tuple[frozenset[str], tuple[int, ...]]:
            changed = {"status"} if status is not None and change_status(conn, ticket_id, status, "user:ops") else set()
            note = [(ticket_id, Comment(body=comment, author="ops@example.org"))] if comment else []
            added = add_comments(conn, note)
            return frozenset(changed), tuple(added)

        change_ticket(self.config, self.store, self.ticket_id(guid), edit)
