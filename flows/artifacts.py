"""What each run leaves in the Prefect UI: readable for the ops person who opens it, free of secrets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from itsm_core.models import utcnow
from itsm_core.sync.batch import COUNTS as COUNT_COLUMNS
from itsm_core.sync.batch import BatchReport

MAX_NOTES = 50
#: What a batch of configuration items can become (they are never comments or ignored).
CI_COUNTS = ("fetched", "created", "updated", "unchanged", "quarantined")
_ENTITY_NAMES = {"tickets": "Tickets", "cis": "Configuration items"}


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    return "-".join(parts).lower().replace("_", "-")


def source_markdown(
    source: str,
    reports: BatchReport | Mapping[str, BatchReport],
    pages: int,
    rule_problems: Sequence[str] = (),
    *,
    failures: Mapping[str, str] | None = None,
    last_success: Mapping[str, datetime | None] | None = None,
) -> str:
    """The run's failures first (what failed, the error, the last success and the lag), then its counts (per
    entity when the source reads several: tickets, configuration items), what the rules decided, and its dead
    letters."""
    if isinstance(reports, BatchReport):
        reports = {"tickets": reports}
    lines = [f"# Sync of `{source}`" + (" — failed" if failures else ""), ""]
    if failures:
        now = utcnow()
        lines += ["## Failed", "", "| data | error | last success | lag |", "|---|---|---|---|"]
        for entity, error in failures.items():
            success = (last_success or {}).get(entity)
            lag = f"{(now - success).total_seconds() / 60:.0f} min" if success else "never synced"
            when = success.strftime("%Y-%m-%d %H:%M UTC") if success else "never"
            shown = error.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {_ENTITY_NAMES.get(entity, entity)} | {shown} | {when} | {lag} |")
        lines += [
            "",
            "The next cycle tries again; what was read before the failure is committed. `itsm sync status` shows",
            "the last error of each source until a run succeeds.",
            "",
        ]
    if list(reports) in (["tickets"], []):
        counts = reports.get("tickets", BatchReport()).counts()
        lines.append(f"{pages} page(s) read. " + ", ".join(f"**{counts[c]}** {c}" for c in COUNT_COLUMNS) + ".")
    else:
        lines += [f"{pages} page(s) read.", ""]
        for entity, report in reports.items():
            counts = report.counts()
            columns = COUNT_COLUMNS if entity == "tickets" else CI_COUNTS
            summary = ", ".join(f"**{counts[c]}** {c}" for c in columns)
            lines.append(f"- {_ENTITY_NAMES.get(entity, entity)}: {summary}.")
    tickets = reports.get("tickets")
    if tickets is not None and (tickets.rules.decided or rule_problems):
        lines += ["", "## Rules", ""]
        decided = tickets.rules.decided
        if decided:
            lines.append(
                "Set by the rules: " + ", ".join(f"**{n}** {name}" for name, n in sorted(decided.items())) + "."
            )
        if tickets.rules.triaged:
            lines.append(f"**{tickets.rules.triaged}** ticket(s) sent to triage (no rule or sure model category).")
        lines += [f"- ⚠ {problem}" for problem in rule_problems]
        lines.append("`itsm rules explain T-…` shows why a ticket got its values.")
    notes = [note for report in reports.values() for note in report.notes]
    if notes:
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
        for note in notes[:MAX_NOTES]:
            reason = note.reason.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {note.dead_letter_id} | `{note.external_id}` | {note.stage} | {reason} |")
        if len(notes) > MAX_NOTES:
            lines.append(f"\n…and {len(notes) - MAX_NOTES} more: `itsm deadletters list --source {source}`.")
    return "\n".join(lines)


def cycle_rows(results: dict[str, dict[str, int] | str]) -> list[dict[str, object]]:
    """One row per source: its ticket counts (and, when a source read configuration items, a `cis` column
    summing theirs up), or its failure."""
    with_cis = any(isinstance(outcome, dict) and "cis_fetched" in outcome for outcome in results.values())
    rows: list[dict[str, object]] = []
    for source, outcome in results.items():
        if isinstance(outcome, str):
            row: dict[str, object] = {"source": source, **dict.fromkeys(COUNT_COLUMNS, "")}
            status = f"failed: {outcome}"
        else:
            row = {"source": source, **{c: outcome[c] for c in COUNT_COLUMNS}}
            status = "ok"
        if with_cis:
            row["cis"] = _ci_summary(outcome) if isinstance(outcome, dict) else ""
        rows.append({**row, "status": status})
    return rows


def _ci_summary(counts: dict[str, int]) -> str:
    if "cis_fetched" not in counts:
        return ""
    return f"{counts['cis_fetched']} fetched: " + ", ".join(
        f"{counts[f'cis_{c}']} {c}" for c in CI_COUNTS if c != "fetched"
    )
