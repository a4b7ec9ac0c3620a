"""What each run leaves in the Prefect UI: readable for the ops person who opens it, free of secrets."""

from __future__ import annotations

from itsm_core.sync.ingest import COUNTS as COUNT_COLUMNS
from itsm_core.sync.ingest import BatchReport

MAX_NOTES = 50


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    return "-".join(parts).lower().replace("_", "-")


def source_markdown(source: str, report: BatchReport, pages: int) -> str:
    counts = report.counts()
    lines = [
        f"# Sync of `{source}`",
        "",
        f"{pages} page(s) read. " + ", ".join(f"**{counts[c]}** {c}" for c in COUNT_COLUMNS) + ".",
    ]
    if report.notes:
        lines += [
            "",
            "## Quarantined",
            "",
            "Each record below is kept whole as a dead letter. Fix the cause (mapping, config or sender), then",
            "replay it with `itsm deadletters replay ID`; `itsm deadletters list` shows all that wait.",
            "",
            "| dead letter | record | stage | reason |",
            "|---|---|---|---|",
        ]
        for note in report.notes[:MAX_NOTES]:
            reason = note.reason.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {note.dead_letter_id} | `{note.external_id}` | {note.stage} | {reason} |")
        if len(report.notes) > MAX_NOTES:
            lines.append(f"\n…and {len(report.notes) - MAX_NOTES} more: `itsm deadletters list --source {source}`.")
    return "\n".join(lines)


def cycle_rows(results: dict[str, dict[str, int] | str]) -> list[dict[str, object]]:
    """One row per source: its counts, or its failure."""
    rows: list[dict[str, object]] = []
    for source, outcome in results.items():
        if isinstance(outcome, str):
            rows.append({"source": source, **dict.fromkeys(COUNT_COLUMNS, ""), "status": f"failed: {outcome}"})
        else:
            rows.append({"source": source, **{c: outcome[c] for c in COUNT_COLUMNS}, "status": "ok"})
    return rows
