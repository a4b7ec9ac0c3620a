"""The headline figures of a report run: what a manager reads first, in the flow's artifact, the HTML page and the
mail that delivers the files."""

from __future__ import annotations

from typing import Any

import pandas as pd


def headline(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The figures a manager reads first, from the run's tables (those it has)."""
    figures: dict[str, Any] = {}
    if "volumes" in tables:
        figures["tickets created"] = int(tables["volumes"]["created"].sum())
    if "response_times" in tables:
        times = tables["response_times"]
        every = times[(times["measure"] == "MTTR") & (times["priority"] == "all")]
        figures["MTTR median (business hours)"] = float(every["median_business_h"].iloc[0]) if len(every) else "n/a"
    if "backlog" in tables:
        figures["open backlog"] = int(tables["backlog"]["open"].sum())
        figures["open for 30 days or more"] = int(tables["backlog"]["30d+"].sum())
    if "sla_compliance" in tables:
        sla = tables["sla_compliance"]
        resolution = sla[sla["metric"] == "resolution"]
        ended = int(resolution["met"].sum() + resolution["breached"].sum())
        figures["resolution SLA met"] = f"{100 * resolution['met'].sum() / ended:.1f} %" if ended else "n/a"
    if "sync_health" in tables:
        health = tables["sync_health"]
        figures["dead letters waiting"] = int(health["dead_letters_waiting"].fillna(0).sum())
    if "reopen_rate" in tables:
        figures["reopen rate"] = _overall_percent(tables["reopen_rate"], "reopen_rate_pct")
    if "first_contact_resolution" in tables:
        figures["first-contact resolution"] = _overall_percent(tables["first_contact_resolution"], "fcr_pct")
    return figures


def _overall_percent(frame: pd.DataFrame, column: str) -> str:
    """The `column` of the report's last row, "all" (every ticket), as "12.5 %"; "n/a" when nothing was counted."""
    value = frame[column].iloc[-1] if len(frame) else None
    return "n/a" if value is None or pd.isna(value) else f"{value:.1f} %"
