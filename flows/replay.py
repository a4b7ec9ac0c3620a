"""`replay-dead-letters`: run quarantined records again through today's parser, mapping and rules — from the CLI
(`itsm deadletters replay`) or from the Prefect UI (the `replay-dead-letters/replay-on-demand` deployment), after the
cause (a mapping, the config, a sender) was fixed.

Each letter is replayed in its own transaction: one that still fails keeps its letter, with the new reason, and
never holds back the others. A push a linked system refused goes back to the outbox instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.runtime import SourceRuntime, build_runtime, load_hub_config
from itsm_core.config import HubConfig
from itsm_core.store import Store
from itsm_core.store.outbox import requeue
from itsm_core.store.quarantine import get_dead_letter, list_dead_letters, record_replay
from itsm_core.store.tickets import format_ticket_id
from itsm_core.sync.ingest import replay_dead_letter

#: Letters replayed by one `--all` at most; run it again for more (each run lists what is left).
MAX_LETTERS = 10_000


@dataclass(frozen=True)
class Replayed:
    letter: int
    source: str
    outcome: str  # replayed, requeued, still fails, already replayed
    detail: str

    @property
    def failed(self) -> bool:
        return self.outcome == "still fails"


def waiting_letters(store: Store, source: str | None = None) -> list[int]:
    """The ids of the dead letters not yet replayed (of one source, or all), oldest first."""
    with store.connect() as conn:
        return [row["id"] for row in list_dead_letters(conn, source=source, limit=MAX_LETTERS)]


def replay_letters(hub: HubConfig, store: Store, letters: Sequence[int]) -> list[Replayed]:
    """Replay each letter in its own transaction; one outcome per letter, in order."""
    runtimes: dict[str, SourceRuntime] = {}
    results = []
    for letter in letters:
        with store.transaction() as conn:
            row = get_dead_letter(conn, letter)
            source = row["source"]
            if row["replayed_at"] is not None:
                into = f" into {format_ticket_id(row['replay_ticket_id'])}" if row["replay_ticket_id"] else ""
                results.append(Replayed(letter, source, "already replayed", f"replayed before{into}"))
                continue
            if row["stage"] == "push":
                ticket_id = requeue(conn, int(row["external_id"].removeprefix("outbox-")))
                record_replay(conn, letter, ticket_id=ticket_id)
                results.append(Replayed(letter, source, "requeued", f"the push to {source} is queued again"))
                continue
            if source not in runtimes:
                runtimes[source] = build_runtime(hub, hub.source(source), store=store)
            result = replay_dead_letter(conn, runtimes[source].pipeline, row)
        if result.outcome == "quarantined":
            results.append(Replayed(letter, source, "still fails", result.error or "refused again"))
        else:
            what = (
                f"ticket {format_ticket_id(result.ticket_id)}" if result.ticket_id else f"record {row['external_id']}"
            )
            results.append(Replayed(letter, source, "replayed", f"{what} {result.outcome}"))
    return results


@flow(name="replay-dead-letters")
def replay_dead_letters(
    letters: list[int] | None = None, source: str | None = None, config_path: str | None = None
) -> dict[str, int]:
    """Replay the dead letters `letters` (ids from `itsm deadletters list`), else every waiting one of `source`,
    else every waiting one. Returns how many were replayed, requeued (pushes) and still fail; the run's
    `replay-dead-letters` artifact lists each letter's outcome."""
    logger = get_run_logger()
    hub = load_hub_config(config_path)
    store = Store(hub.database_url.get_secret_value())
    store.ensure_current()
    try:
        results = replay_letters(hub, store, letters if letters else waiting_letters(store, source))
    finally:
        store.dispose()
    create_table_artifact(
        key="replay-dead-letters",
        table=[asdict(r) for r in results] or [{"letter": "", "outcome": "no dead letter waiting"}],
        description="Each dead letter replayed, and what became of it",
    )
    counts = {outcome: sum(r.outcome == outcome for r in results) for outcome in ("replayed", "requeued")}
    counts["still_failing"] = sum(r.failed for r in results)
    logger.info("dead letters: %s", ", ".join(f"{n} {name}" for name, n in counts.items()))
    if counts["still_failing"]:
        logger.warning("%d dead letter(s) still fail; their reasons are in the artifact", counts["still_failing"])
    return counts
