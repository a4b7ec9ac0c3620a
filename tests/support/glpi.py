"""A hub synced with a simulated GLPI, driven as plain Python: pull pages, push the outbox, change tickets.

The page and push functions are the flows' own (`ingest_page.fn`, `deliver_linked`), without Prefect, so tests
choose where to crash and how many cycles to run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from connectors.glpi.push import GlpiWriter
from flows.outbound import DeliveryReport, deliver_linked
from flows.runtime import build_runtime, change_ticket
from flows.sync import ENTITY, ingest_page
from itsm_core.config import HubConfig, parse_config
from itsm_core.models import Comment
from itsm_core.store import Store
from itsm_core.store.comments import add_comments
from itsm_core.store.sync_state import get_state
from itsm_core.store.tables import CommentRow, ExternalRefRow, TicketRow
from itsm_core.store.tickets import change_status, set_fields
from itsm_core.sync.batch import BatchReport
from simulators.glpi.simulator import HUB_USER_TOKEN, GlpiSimulator

SOURCE = "glpi"


def glpi_config(sim: GlpiSimulator, database_url: str, base_dir: Path, **options: Any) -> HubConfig:
    """The config of a hub with one GLPI source; also written to `base_dir/itsm.yaml` for the CLI."""
    settings = {"page_size": 10, "overlap_seconds": 120, **options}
    extra = "".join(f", {key}: {value}" for key, value in settings.items())
    text = (
        f"database_url: '{database_url}'\n"
        f"sources: [{{name: {SOURCE}, kind: glpi, url: '{sim.url}', user_token: {HUB_USER_TOKEN}, "
        f"timezone: Europe/Paris{extra}}}]\n"
    )
    (base_dir / "itsm.yaml").write_text(text, encoding="utf-8")
    return parse_config(text, base_dir=base_dir)


def pull(config: HubConfig, store: Store, entities: tuple[str, ...] | None = None, source: str = SOURCE) -> BatchReport:
    """One pull of `source`'s `entities` (default: all it reads, CIs first), page by page from each entity's
    committed watermark, with the flow's own page task (`ingest_page.fn`, no Prefect): what `sync-source` does."""
    runtime = build_runtime(config, config.source(source), store=store)
    report = BatchReport()
    try:
        for entity in entities or runtime.connector.entities:
            with store.connect() as conn:
                watermark = (get_state(conn, source, entity) or {}).get("watermark")
            for page in runtime.connector.plan_pages(watermark, entity):
                page_report, watermark = ingest_page.fn(runtime, entity, page, watermark)
                report += page_report
    finally:
        runtime.connector.close()
    return report


@dataclass
class GlpiHub:
    sim: GlpiSimulator
    config: HubConfig
    store: Store
    reports: list[BatchReport] = field(default_factory=list)

    @classmethod
    def start(cls, sim: GlpiSimulator, database_url: str, base_dir: Path, **options: Any) -> GlpiHub:
        store = Store(database_url)
        store.upgrade()
        return cls(sim, glpi_config(sim, database_url, base_dir, **options), store)

    def runtime(self):
        return build_runtime(self.config, self.config.source(SOURCE), store=self.store)

    def watermark(self) -> str | None:
        with self.store.connect() as conn:
            return (get_state(conn, SOURCE, ENTITY) or {}).get("watermark")

    def sync(self) -> BatchReport:
        """One pull of every page, from the committed watermark, as `sync-source` runs it."""
        report = pull(self.config, self.store, entities=(ENTITY,))
        self.reports.append(report)
        return report

    def push(self) -> DeliveryReport:
        writer = GlpiWriter(self.config.source(SOURCE))
        try:
            return deliver_linked(self.store, SOURCE, writer)
        finally:
            writer.close()

    def cycle(self) -> tuple[BatchReport, DeliveryReport]:
        return self.sync(), self.push()

    # --- the hub's side, as a person at the CLI ---------------------------------------------------------------

    def ticket_id(self, glpi_id: int) -> int:
        refs = ExternalRefRow.__table__
        with self.store.connect() as conn:
            query = select(refs.c.ticket_id).where(refs.c.system == SOURCE, refs.c.external_id == f"Ticket/{glpi_id}")
            return conn.execute(query).scalar_one()

    def ticket(self, glpi_id: int) -> dict[str, Any]:
        tickets = TicketRow.__table__
        with self.store.connect() as conn:
            row = conn.execute(select(tickets).where(tickets.c.id == self.ticket_id(glpi_id))).mappings().one()
            return dict(row)

    def comments(self, glpi_id: int) -> list[str]:
        comments = CommentRow.__table__
        with self.store.connect() as conn:
            query = select(comments.c.body).where(comments.c.ticket_id == self.ticket_id(glpi_id))
            return list(conn.execute(query.order_by(comments.c.id)).scalars())

    def change(self, glpi_id: int, *, status: str | None = None, comment: str | None = None, **fields: Any) -> None:
        """A person's change in the hub, queued for GLPI as the CLI queues it."""

        def edit(conn: Connection, ticket_id: int) -> tuple[frozenset[str], tuple[int, ...]]:
            changed = set(set_fields(conn, ticket_id, fields, "user:ops")) if fields else set()
            if status is not None and change_status(conn, ticket_id, status, "user:ops"):
                changed.add("status")
            added: list[int] = []
            if comment is not None:
                added = add_comments(conn, [(ticket_id, Comment(body=comment, author="ops@example.org"))])
            return frozenset(changed), tuple(added)

        change_ticket(self.config, self.store, self.ticket_id(glpi_id), edit)

    def count(self, table: Any) -> int:
        with self.store.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()
