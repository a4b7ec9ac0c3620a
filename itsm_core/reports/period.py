"""The period a report covers: half-open, [start, end), as UTC instants computed from local midnights in the
definition's time zone (a month in Paris starts at 23:00 or 22:00 UTC the day before, whatever the DST)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Period:
    start: datetime  # UTC, included
    end: datetime  # UTC, excluded
    zone: str
    label: str  # in file names: 2026-11, 2026-W47, 2026-11-30, 2026-11-01_2026-11-15

    def days(self) -> list[tuple[str, datetime, datetime]]:
        """Each local day of the period: (YYYY-MM-DD, its start, its end) in UTC."""
        zone = ZoneInfo(self.zone)
        first = self.start.astimezone(zone).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(zone).date()
        out = []
        day = first
        while day <= last:
            out.append((day.isoformat(), _midnight(day, zone), _midnight(day + timedelta(days=1), zone)))
            day += timedelta(days=1)
        return out

    def buckets(self) -> tuple[str, list[tuple[str, datetime, datetime]]]:
        """("day", its days) for a period of up to `DAILY_UP_TO` days, else ("month", its local months), each
        (label, start, end) in UTC and clipped to the period."""
        days = self.days()
        if len(days) <= DAILY_UP_TO:
            return "day", days
        months: list[tuple[str, datetime, datetime]] = []
        for label, start, end in days:
            if months and months[-1][0] == label[:7]:
                months[-1] = (label[:7], months[-1][1], end)
            else:
                months.append((label[:7], start, end))
        return "month", months


#: Volumes are counted per day up to this many days, per month beyond.
DAILY_UP_TO = 92


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def between(first: date, last: date, zone: str) -> Period:
    """From the local day `first` to the local day `last`, both included."""
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    tz = ZoneInfo(zone)
    return Period(_midnight(first, tz), _midnight(last + timedelta(days=1), tz), zone, f"{first}_{last}")


def named(name: str, zone: str, now: datetime) -> Period:
    """previous_month, previous_week (ISO, Monday first), previous_day or month_to_date, seen from `now`."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    if name == "previous_month":
        end = today.replace(day=1)
        start = (end - timedelta(days=1)).replace(day=1)
        return Period(_midnight(start, tz), _midnight(end, tz), zone, f"{start:%Y-%m}")
    if name == "previous_week":
        end = today - timedelta(days=today.weekday())
        start = end - timedelta(days=7)
        iso = start.isocalendar()
        return Period(_midnight(start, tz), _midnight(end, tz), zone, f"{iso.year}-W{iso.week:02d}")
    if name == "previous_day":
        start = today - timedelta(days=1)
        return Period(_midnight(start, tz), _midnight(today, tz), zone, start.isoformat())
    if name == "month_to_date":
        start = today.replace(day=1)
        return Period(_midnight(start, tz), now.astimezone(UTC), zone, f"{start:%Y-%m}-to-{today}")
    raise ValueError(f"unknown period {name!r}")
