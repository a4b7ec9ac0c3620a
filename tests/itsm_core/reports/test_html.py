"""The HTML page of a report run, rendered from hand-made tables: headline first, then the charts (inline SVG), then
every table escaped; charts without data say so; nothing in the page points outside it. (In a real browser, on a
real store: tests/flows/test_reports.py.)"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pandas as pd

from itsm_core.reports.html import NO_DATA, render_page
from itsm_core.reports.period import between

NOVEMBER = between(date(2026, 11, 1), date(2026, 11, 30), "Europe/Paris")
GENERATED = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script> $x$ -->"
AGES = ["0-1d", "1-3d", "3-7d", "7-30d", "30d+"]
TIMES = ["measure", "priority", "tickets", "median_business_h", "p90_business_h", "median_calendar_h", "p90_calendar_h"]
KB = ["rank", "cluster", "tickets", "previous_tickets", "growth_pct", "top_terms", "example_tickets", "shared_solution"]


def tables(kb_rows: list[tuple] | None = None) -> dict[str, pd.DataFrame]:
    out = {
        "backlog": pd.DataFrame([("P1", "net", 1, 2, 0, 0, 3, 6), ("P2", f"<b>{HOSTILE}</b>", 0, 1, 0, 0, 1, 2)],
                                columns=["priority", "group", *AGES, "open"]),
        "response_times": pd.DataFrame([("MTTR", "P1", 3, 2.0, 5.0, 3.0, 7.0), ("MTTR", "all", 3, 2.0, 5.0, 3.0, 7.0)],
                                       columns=TIMES),
        "volumes": pd.DataFrame([("2026-11-02", "email", "net", 3), ("2026-11-03", "glpi", "hw", 2)],
                                columns=["day", "source_type", "category", "created"]),
        "sync_health": pd.DataFrame({"source": ["glpi"], "last_success_at": [pd.Timestamp("2026-11-05 10:00Z")],
                                     "lag_minutes": [None]}),
    }  # fmt: skip
    if kb_rows is not None:
        out["kb_trends"] = pd.DataFrame(kb_rows, columns=KB)
    return out


TREND = pd.DataFrame([("2026-11-02", "resolution", 3, 1, 75.0), ("2026-11-03", "resolution", 1, 1, 50.0)],
                     columns=["day", "metric", "met", "breached", "compliance_pct"])  # fmt: skip
CLUSTERS = [(1, 4, 12, 3, 300.0, ["vpn", "anyconnect"], ["T-000001"], None), (2, 9, 5, 5, 0.0, HOSTILE, [], "x")]


def captions(page: str) -> list[str]:
    return re.findall(r"<figcaption>([^<]*)</figcaption>", page)


def test_the_page_reads_title_headline_charts_then_tables():
    page = render_page("monthly", NOVEMBER, GENERATED, tables(CLUSTERS), {"tickets created": 5}, TREND)
    assert "<h1>monthly</h1>" in page
    assert "2026-11-01 to 2026-11-30 (days in Europe/Paris)" in page
    assert "generated 2026-12-01 06:00 Europe/Paris" in page  # 05:00 UTC, read in the definition's zone
    headline, charts, tabular = page.index("<h2>Headline"), page.index("<h2>Charts"), page.index("<h2>Tables")
    assert headline < charts < tabular
    assert '<span class="value">5</span><span class="label">tickets created</span>' in page
    assert captions(page) == ["SLA compliance (% of ended clocks met)", "Open backlog by age and priority",
                              "Time to resolve by priority (business hours)", "Tickets created by source",
                              "Top knowledge-base clusters"]  # fmt: skip
    assert page.count("<svg") == 5 and NO_DATA not in page
    assert [f'<h3 id="{name}">' in page for name in ("backlog", "sync_health", "kb_trends")] == [True] * 3
    assert "<td>2026-11-05 11:00</td>" in page  # a UTC time of a table, in the period's zone
    assert "<td>vpn, anyconnect</td>" in page


def test_values_from_the_store_are_escaped_in_tables_and_charts():
    page = render_page("monthly", NOVEMBER, GENERATED, tables(CLUSTERS), {}, TREND)
    assert "<script" not in page and "<b>" not in page
    assert "<td>&lt;b&gt;&lt;script&gt;alert(1)&lt;/script&gt; $x$ --&gt;&lt;/b&gt;</td>" in page
    # matplotlib keeps a label's text in an SVG comment: escaped, and "--" cannot close the comment early
    assert "<!-- &lt;script&gt;alert(1)&lt;/script&gt; $x$ - -&gt; -->" in page


def test_nothing_in_the_page_asks_for_a_resource():
    page = render_page("monthly", NOVEMBER, GENERATED, tables(CLUSTERS), {"tickets created": 5}, TREND)
    assert re.findall(r'\b(?:src|href)="(?!#)', page) == []  # only references inside the page (SVG glyphs)
    assert re.findall(r"url\((?!#)", page) == [] and "@import" not in page and "@font-face" not in page
    assert "<script" not in page and "<link" not in page and "<img" not in page and "<iframe" not in page
    # the only URLs are the SVG namespaces, which name and fetch nothing
    assert set(re.findall(r"https?://[^\"'\s<>]+", page)) == {"http://www.w3.org/2000/svg",
                                                               "http://www.w3.org/1999/xlink"}  # fmt: skip


def test_charts_without_data_say_so_and_the_kb_chart_needs_clusters():
    empty = {name: frame.iloc[0:0] for name, frame in tables([]).items()}
    page = render_page("monthly", NOVEMBER, GENERATED, empty, {}, TREND.iloc[0:0])
    assert captions(page) == ["SLA compliance (% of ended clocks met)", "Open backlog by age and priority",
                              "Time to resolve by priority (business hours)", "Tickets created by source"]  # fmt: skip
    assert page.count(f'<p class="note">{NO_DATA}</p>') == 4 and "<svg" not in page
    assert page.count('<p class="note">no rows in this period</p>') == 5  # kb_trends' table too

    without_kb = render_page("monthly", NOVEMBER, GENERATED, tables(), {}, None)  # no sla_compliance in the run
    assert captions(without_kb) == ["Open backlog by age and priority", "Time to resolve by priority (business hours)",
                                    "Tickets created by source"]  # fmt: skip
    assert without_kb.count("<svg") == 3 and 'id="kb_trends"' not in without_kb
