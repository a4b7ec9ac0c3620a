"""The HTML page of a report run: one self-contained file a manager opens in a browser — the headline figures, the
charts (inline SVG drawn by matplotlib), then every report's table.

Nothing in the page asks for anything when it opens: no JavaScript, no external style sheet, font or image (the
charts' text is drawn as SVG paths). Values from the store reach the page escaped (jinja2 autoescape; matplotlib
escapes the text it writes into the SVG).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from itsm_core.reports.period import Period
from itsm_core.reports.queries import AGE_BUCKETS

NO_DATA = "no data in this period"
#: Longest label on an axis (knowledge-base terms can be long); longer ones end with "…".
LABEL_CHARS = 48
#: Bucket labels shown under a time axis at most (a quarter of days would be unreadable).
TIME_TICKS = 16
_COLOURS = ("#1f5f99", "#e07b39", "#3a9a5b", "#c94f4f", "#8467b5", "#8c8c8c")


@dataclass(frozen=True)
class Chart:
    """One chart of the page: its SVG, or the note said instead when there is nothing to draw."""

    title: str
    svg: Markup | None
    note: str | None = None


def render_page(
    name: str,
    period: Period,
    generated_at: datetime,
    tables: dict[str, pd.DataFrame],
    figures: dict[str, Any],
    sla_trend: pd.DataFrame | None,
) -> str:
    """The page of the definition `name` for `period`: `figures` (the headline), the charts of the `tables` it has
    (and of `sla_trend`, the SLA compliance per bucket, when given), then every table. Times read in the period's
    zone."""
    zone = ZoneInfo(period.zone)
    days = period.days()
    return (
        _templates()
        .get_template("report.html.j2")
        .render(
            name=name,
            first_day=days[0][0],
            last_day=days[-1][0],
            zone=period.zone,
            generated=generated_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            figures=figures,
            charts=charts(tables, sla_trend),
            tables=[(report, list(frame.columns), _cells(frame, zone)) for report, frame in tables.items()],
        )
    )


def charts(tables: dict[str, pd.DataFrame], sla_trend: pd.DataFrame | None) -> list[Chart]:
    """The charts of the reports the run has, in reading order; the knowledge-base one only when it has clusters."""
    out: list[Chart] = []
    # Text as paths: no font for the browser to load. `$` in a label (from the store) is text, not TeX.
    with matplotlib.rc_context({"svg.fonttype": "path", "text.parse_math": False}):
        if sla_trend is not None:
            out.append(_sla_trend_chart(sla_trend))
        if "backlog" in tables:
            out.append(_backlog_chart(tables["backlog"]))
        if "response_times" in tables:
            out.append(_mttr_chart(tables["response_times"]))
        if "volumes" in tables:
            out.append(_volumes_chart(tables["volumes"]))
        if "kb_trends" in tables and not tables["kb_trends"].empty:
            out.append(_kb_chart(tables["kb_trends"]))
    return out


def _sla_trend_chart(trend: pd.DataFrame) -> Chart:
    title = "SLA compliance (% of ended clocks met)"
    if trend.empty:
        return Chart(title, None, NO_DATA)
    unit = trend.columns[0]
    wide = trend.pivot_table(index=unit, columns="metric", values="compliance_pct", aggfunc="first").sort_index()
    figure, axes = _figure()
    positions = range(len(wide.index))
    for colour, metric in zip(_COLOURS, wide.columns, strict=False):
        axes.plot(positions, wide[metric], marker="o", color=colour, label=metric.replace("_", " "))
    axes.set_ylim(0, 105)
    axes.set_ylabel("% met")
    _time_axis(axes, list(wide.index), unit)
    axes.legend(loc="lower left", fontsize=8)
    return Chart(title, _svg(figure, "sla-trend"))


def _backlog_chart(backlog: pd.DataFrame) -> Chart:
    title = "Open backlog by age and priority"
    ages = [label for label, _ in AGE_BUCKETS]
    if backlog.empty or int(backlog["open"].sum()) == 0:
        return Chart(title, None, NO_DATA)
    by_priority = backlog.groupby("priority")[ages].sum().sort_index()
    figure, axes = _figure()
    bottom = [0] * len(ages)
    for colour, (priority, counts) in zip(_cycle(len(by_priority)), by_priority.iterrows(), strict=True):
        axes.bar(ages, list(counts), bottom=bottom, color=colour, label=str(priority))
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("age at the period's end")
    axes.set_ylabel("open tickets")
    axes.legend(title="priority", fontsize=8)
    return Chart(title, _svg(figure, "backlog"))


def _mttr_chart(times: pd.DataFrame) -> Chart:
    title = "Time to resolve by priority (business hours)"
    mttr = times[(times["measure"] == "MTTR") & (times["priority"] != "all")].sort_values("priority")
    if mttr.empty:
        return Chart(title, None, NO_DATA)
    figure, axes = _figure()
    positions = list(range(len(mttr)))
    width = 0.4
    axes.bar([p - width / 2 for p in positions], mttr["median_business_h"], width, color=_COLOURS[0], label="median")
    axes.bar([p + width / 2 for p in positions], mttr["p90_business_h"], width, color=_COLOURS[1], label="90th pct")
    axes.set_xticks(positions, list(mttr["priority"]))
    axes.set_ylabel("business hours")
    axes.legend(fontsize=8)
    return Chart(title, _svg(figure, "mttr"))


def _volumes_chart(volumes: pd.DataFrame) -> Chart:
    title = "Tickets created by source"
    if volumes.empty:
        return Chart(title, None, NO_DATA)
    unit = volumes.columns[0]
    wide = volumes.pivot_table(index=unit, columns="source_type", values="created", aggfunc="sum", fill_value=0)
    wide = wide.sort_index()
    figure, axes = _figure()
    positions = list(range(len(wide.index)))
    bottom = [0] * len(positions)
    for colour, source in zip(_cycle(len(wide.columns)), wide.columns, strict=True):
        axes.bar(positions, list(wide[source]), bottom=bottom, color=colour, label=str(source))
        bottom = [b + c for b, c in zip(bottom, wide[source], strict=True)]
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("tickets created")
    _time_axis(axes, list(wide.index), unit)
    axes.legend(title="source", fontsize=8)
    return Chart(title, _svg(figure, "volumes"))


def _kb_chart(clusters: pd.DataFrame) -> Chart:
    ranked = clusters.sort_values("rank")
    labels = [_short(_text(terms)) for terms in ranked["top_terms"]]
    figure, axes = _figure(height=0.9 + 0.35 * len(ranked))
    axes.barh(range(len(ranked)), list(ranked["tickets"]), color=_COLOURS[0])
    axes.set_yticks(range(len(ranked)), labels)
    axes.invert_yaxis()  # rank 1 on top
    axes.set_xlabel("tickets in the period")
    return Chart("Top knowledge-base clusters", _svg(figure, "kb-clusters"))


def _figure(height: float = 3.2) -> tuple[Figure, Axes]:
    # A Figure of its own (not pyplot): no global state, no GUI backend, safe in a worker's threads.
    figure = Figure(figsize=(7.5, height), layout="constrained")
    axes = figure.subplots()
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    return figure, axes


def _time_axis(axes: Axes, labels: list[str], unit: str) -> None:
    """Bucket labels under the bars or points, thinned to at most `TIME_TICKS`."""
    stride = max(1, -(-len(labels) // TIME_TICKS))
    shown = list(range(0, len(labels), stride))
    axes.set_xticks(shown, [labels[i] for i in shown], rotation=45, ha="right", fontsize=8)
    axes.set_xlabel(unit)


def _cycle(count: int) -> list[str]:
    return [_COLOURS[i % len(_COLOURS)] for i in range(count)]


def _svg(figure: Figure, chart_id: str) -> Markup:
    """The figure as an inline <svg> element, its ids salted with `chart_id`: the charts of one page do not share
    clip paths."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": chart_id, "svg.id": chart_id}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    # Trusted as markup: matplotlib's own SVG, which escapes the text it writes (labels from the store).
    return Markup(text[text.index("<svg") :])


def _cells(frame: pd.DataFrame, zone: ZoneInfo) -> list[list[str]]:
    """The frame's values as the table shows them: empty for missing, times in the period's zone."""
    shown = frame.astype(object).where(frame.notna(), None)
    return [[_cell(value, zone) for value in row] for row in shown.itertuples(index=False)]


def _cell(value: Any, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value.tzinfo else value.isoformat(" ")
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("itsm_core.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
