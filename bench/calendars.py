"""Cost of the business-calendar arithmetic the SLA engine calls for every ticket event.

    .venv/bin/python bench/calendars.py [--calls 200000] [--timezone Europe/Paris] [--country FR] [--seed 1]

A compiled calendar (09:00-12:30, 13:30-17:00 on weekdays, the country's holidays, two closures) answers
`business_seconds(a, b)` and `add_business_seconds(a, s)` for random starts over 2026-2027, spans of 0-30 days and
0-30 business days of 8 h. The years are built before the timed loops (their cost is printed apart, once per year and
calendar). Reference in the same run: the same loops with plain datetime arithmetic, `(b - a).total_seconds()` and
`a + timedelta(seconds=s)`. Ends with one JSON line: µs per call for each, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, date, datetime, timedelta

from itsm_core.calendars import Calendar, HolidaySource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--timezone", default="Europe/Paris")
    parser.add_argument("--country", default="FR", help="holidays of this country (ISO code)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    config = Calendar(
        timezone=args.timezone,
        hours={"mon-fri": ["09:00-12:30", "13:30-17:00"]},
        holidays=[HolidaySource(country=args.country)],
        closures=[date(2026, 8, 14), date(2026, 12, 24), date(2027, 12, 24)],
    )
    calendar = config.compile()
    started = time.perf_counter()
    for year in (2026, 2027, 2028):  # 30-day spans from late 2027 reach into 2028
        calendar.business_seconds(datetime(year, 6, 1, tzinfo=UTC), datetime(year, 6, 2, tzinfo=UTC))
    build_ms = (time.perf_counter() - started) * 1000 / 3

    rng = random.Random(args.seed)
    origin, two_years = datetime(2026, 1, 1, tzinfo=UTC), 2 * 365 * 86400 * 10**6
    starts = [origin + timedelta(microseconds=rng.randrange(two_years)) for _ in range(args.calls)]
    ends = [a + timedelta(microseconds=rng.randrange(30 * 86400 * 10**6)) for a in starts]
    amounts = [rng.randrange(30 * 8 * 3600 * 10**6) / 10**6 for _ in range(args.calls)]
    pairs, adds = list(zip(starts, ends, strict=True)), list(zip(starts, amounts, strict=True))

    def timed(loop) -> float:
        started = time.perf_counter()
        loop()
        return (time.perf_counter() - started) * 1e6 / args.calls

    measure = calendar.business_seconds
    add = calendar.add_business_seconds
    business_us = timed(lambda: [measure(a, b) for a, b in pairs])
    add_us = timed(lambda: [add(a, s) for a, s in adds])
    minus_us = timed(lambda: [(b - a).total_seconds() for a, b in pairs])
    plus_us = timed(lambda: [a + timedelta(seconds=s) for a, s in adds])

    # every answer checked after the clock: adding then measuring gives the seconds back
    assert all(measure(a, add(a, s)) == s for a, s in adds[:10_000])

    print(f"calendar {args.timezone} + {args.country} holidays, {args.calls} calls each, year build {build_ms:.1f} ms")
    print(f"business_seconds      {business_us:6.2f} µs/call   plain (b - a).total_seconds()  {minus_us:5.2f} µs/call")
    print(f"add_business_seconds  {add_us:6.2f} µs/call   plain a + timedelta(seconds=s)  {plus_us:5.2f} µs/call")
    print(f"ratio to plain arithmetic: {business_us / minus_us:.1f}x and {add_us / plus_us:.1f}x")
    print(json.dumps({
        "calls": args.calls,
        "timezone": args.timezone,
        "business_seconds_us": round(business_us, 3),
        "add_business_seconds_us": round(add_us, 3),
        "plain_subtraction_us": round(minus_us, 3),
        "plain_addition_us": round(plus_us, 3),
        "business_seconds_ratio": round(business_us / minus_us, 1),
        "add_business_seconds_ratio": round(add_us / plus_us, 1),
        "year_build_ms": round(build_ms, 2),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
