"""Business calendars: when a team is at work, in its own time zone, minus public holidays and closures.

Configured in YAML, validated by pydantic, compiled once; then agent routing asks whether someone is at work and the
SLA engine how much business time lies between two instants, or when N business seconds after an instant fall::

    timezone: Europe/Paris                # IANA name; the hours are wall-clock times there
    hours:
      mon-fri: ["09:00-12:30", "13:30-17:00"]
      sat: ["09:00-12:00"]
    holidays: [{country: FR}, {country: DE, subdivision: BY}]
    closures: [2026-12-24, 2026-12-31]    # company shutdown and other closed days

Hours: each key names days of the week — one day (``mon`` … ``sun``), a range in week order (``mon-fri``,
``sat-sun``, ``mon-sun``) or several of these joined by commas (``mon-wed,fri``), in any case; each value is a list of
``HH:MM-HH:MM`` local wall-clock intervals, start included, end excluded, ``24:00`` allowed as an end. A day of the week
no key names is closed (an empty list says so explicitly); a day named twice is an error, and so are empty, reversed
and overlapping intervals: an overnight shift is two intervals, ``22:00-24:00`` on one day and ``00:00-06:00`` on the
next. Touching intervals (``09:00-12:00``, ``12:00-17:00``, or ``24:00`` then ``00:00`` the next day) are joined.

Time: inputs are aware datetimes, in any zone (naive ones raise ValueError); outputs are UTC datetimes. Business time
is real elapsed time. Each local day is converted to UTC with its own offsets, so 00:00-24:00 lasts 23 h on the day
clocks spring forward and 25 h on the day they fall back, while 09:00-17:00 stays 8 h. A wall time HH:MM on day D is
the first instant at which the local clock reads D HH:MM or later:

- an ambiguous time (in the hour repeated when clocks fall back) is its first occurrence: fold=0;
- a nonexistent time (in the hour skipped when clocks spring forward) is the instant the clocks jump, so an interval
  counts only the time that exists: in Paris on 2026-03-29, 02:00-04:00 lasts 1 h and 02:15-02:45 nothing. Plain
  fold=0 would read 02:30 as 03:30, and turn 02:30-03:15 backwards; for every time that exists the two agree.

Implementation: the first query that touches a local year builds that year's open intervals (UTC microseconds since
the epoch, touching ones joined) and fetches its holidays from the `holidays` package, with the running total of open
time before each interval. Business time between two instants is then the difference of two running totals and adding
business time a bisection in them: a couple of microseconds whatever the span, no loop over days or weeks.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo

from holidays import HolidayBase, country_holidays
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from itsm_core.models import ZoneName

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Week = tuple[tuple[tuple[int, int], ...], ...]
"""Open hours per day of the week (Monday first): sorted, disjoint (start, end) minutes after local midnight."""

_INTERVAL = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
_MAX_CLOSED_YEARS = 50  # searching further for an open instant means the configuration closes everything


class HolidaySource(BaseModel):
    """The public holidays of a country, or of one of its subdivisions, from the `holidays` package.

    Observed days are included (US Independence Day 2026, a Saturday, closes Friday the 3rd too). Names are in
    `language` — one the package has for that country; by default English where it has it, else the country's own
    language (never the process's locale, which the package would otherwise follow).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str = Field(description="ISO 3166 code: FR, DE, US…")
    subdivision: str | None = Field(default=None, description="a state, region…: BY, CA (or its name: California)")
    language: str | None = Field(default=None, description="of the holiday names, e.g. en_US, fr, de")

    @field_validator("country")
    @classmethod
    def _known_country(cls, country: str) -> str:
        code = country.strip().upper()
        try:
            country_holidays(code)  # no year is computed until one is asked for
        except NotImplementedError:
            raise ValueError(f"the holidays package knows no country {country!r} (an ISO code: FR, DE, US…)") from None
        return code

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, subdivision: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("country")
        if subdivision is None or country is None:
            return subdivision
        entity = country_holidays(country)
        codes = {code.upper(): code for code in entity.subdivisions}
        codes.update({alias.upper(): code for alias, code in entity.subdivisions_aliases.items()})
        code = codes.get(subdivision.strip().upper())
        if code is None:
            known = ", ".join(entity.subdivisions) or "none"
            raise ValueError(f"{country} has no subdivision {subdivision!r} in the holidays package (known: {known})")
        return code

    @field_validator("language")
    @classmethod
    def _known_language(cls, language: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("country")
        if language is None or country is None:
            return language
        supported = country_holidays(country).supported_languages
        if language not in supported:
            raise ValueError(f"holiday names for {country} come in {', '.join(supported)}, not {language!r}")
        return language

    def entity(self, year: int) -> HolidayBase:
        """The package's holidays of one year, names in the chosen language (see the class docstring)."""
        language = self.language
        if language is None:
            country = country_holidays(self.country)
            english = sorted(code for code in country.supported_languages if code.startswith("en"))
            language = "en_US" if "en_US" in english else english[0] if english else country.default_language
        return country_holidays(self.country, subdiv=self.subdivision, years=year, language=language)


class Calendar(BaseModel):
    """A business calendar as configured: time zone, weekly hours, holidays, closures. See the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: ZoneName = Field(default="UTC", description="IANA time zone of the hours (Europe/Paris)")
    hours: dict[str, list[str]] = Field(
        default_factory=lambda: {"mon-fri": ["09:00-17:00"]},
        description="days of the week (mon, mon-fri, sat-sun, mon,wed) to local intervals HH:MM-HH:MM",
    )
    holidays: list[HolidaySource] = Field(default_factory=list)
    closures: list[date] = Field(default_factory=list, description="further closed days (company shutdown…)")

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, hours: dict[str, list[str]]) -> dict[str, list[str]]:
        _week_of(hours)
        return hours

    @classmethod
    def always(cls) -> Calendar:
        """Open around the clock, every day, in UTC: business time is plain elapsed time."""
        return cls(timezone="UTC", hours={"mon-sun": ["00:00-24:00"]})

    def compile(self) -> BusinessCalendar:
        """The calendar ready for queries; keep it: the years it builds are cached in it."""
        return BusinessCalendar(self)


def _week_of(hours: dict[str, list[str]]) -> Week:
    """The open hours of each day of the week; ValueError naming the key for anything ill-formed."""
    week: list[list[tuple[int, int]] | None] = [None] * 7
    for key, intervals in hours.items():
        parsed = sorted(_interval(key, text) for text in intervals)
        for (_, end), (start, _) in pairwise(parsed):
            if start < end:
                raise ValueError(f"hours[{key!r}]: intervals overlap around {_hhmm(start)}")
        joined: list[tuple[int, int]] = []
        for start, end in parsed:
            if joined and joined[-1][1] == start:
                joined[-1] = (joined[-1][0], end)
            else:
                joined.append((start, end))
        for day in _days(key):
            if week[day] is not None:
                raise ValueError(f"hours[{key!r}]: {DAYS[day]} is already given by another key")
            week[day] = joined
    if not any(week):
        raise ValueError("hours: no day has open hours, the calendar would never open")
    return tuple(tuple(day or ()) for day in week)


def _days(key: str) -> list[int]:
    days: list[int] = []
    for part in key.lower().split(","):
        first, dash, last = (word.strip() for word in part.partition("-"))
        last = last if dash else first
        if first not in DAYS or last not in DAYS:
            raise ValueError(
                f"hours[{key!r}]: name days as mon … sun, ranges as mon-fri, several joined by commas (mon,wed-fri)"
            )
        if DAYS.index(last) < DAYS.index(first):
            wrapped = f"{first}-sun" if first != "sun" else "sun"
            wrapped += f",mon-{last}" if last != "mon" else ",mon"
            raise ValueError(f"hours[{key!r}]: ranges run in week order, mon to sun: write {wrapped}")
        for day in range(DAYS.index(first), DAYS.index(last) + 1):
            if day in days:
                raise ValueError(f"hours[{key!r}]: {DAYS[day]} is named twice")
            days.append(day)
    return days


def _interval(key: str, text: str) -> tuple[int, int]:
    match = _INTERVAL.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"hours[{key!r}]: {text!r} is not an interval HH:MM-HH:MM")
    start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
    if start_h > 23 or start_m > 59 or end_m > 59 or end_h > 24 or (end_h == 24 and end_m):
        raise ValueError(f"hours[{key!r}]: {text!r} is not a time of day (00:00 to 23:59; 24:00 only as an end)")
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if end == start:
        raise ValueError(f"hours[{key!r}]: {text!r} is empty")
    if end < start:
        raise ValueError(
            f"hours[{key!r}]: {text!r} ends before it starts "
            "(an overnight shift is two intervals: 22:00-24:00 one day, 00:00-06:00 the next)"
        )
    return start, end


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class _Year:
    """A local year's open intervals, UTC microseconds since the epoch: sorted, disjoint, touching ones joined."""

    starts: list[int]
    ends: list[int]
    before: list[int]  # before[k]: open microseconds in the year before interval k; before[-1]: the year's total
    holidays: dict[date, str]


def _micros(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()}: business calendars take aware datetimes (UTC)")
    return (at - _EPOCH) // _MICROSECOND


def _instant(micros: int) -> datetime:
    return _EPOCH + timedelta(0, 0, micros)  # positional: measurably faster than the keyword


def _open_before(year: _Year, t: int) -> int:
    """Open microseconds in `year` before instant `t` (which lies in the year)."""
    k = bisect_right(year.starts, t) - 1
    if k < 0:
        return 0
    end = year.ends[k]
    return year.before[k + 1] if t >= end else year.before[k] + t - year.starts[k]


class BusinessCalendar:
    """A compiled `Calendar`: open time as UTC instants, built a year at a time and kept.

    Inputs are aware datetimes (naive ones raise ValueError), outputs UTC datetimes at microsecond resolution; business
    seconds are floats, resolved to the microsecond. Safe to share between threads (a year built twice at once is
    built the same).
    """

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self.timezone = calendar.timezone
        # datetime's own UTC is the fast path for the common 24x7 / UTC calendars; it is the same zone
        self._zone: tzinfo = UTC if calendar.timezone == "UTC" else ZoneInfo(calendar.timezone)
        self._week = _week_of(calendar.hours)
        self._closures = frozenset(calendar.closures)
        self._years: dict[int, _Year] = {}
        self._year_starts: dict[int, int] = {}  # UTC microseconds of each local 1 January, 00:00
        self._spans: dict[int, tuple[int, int, _Year]] = {}  # a built year with its bounds: one look-up per query

    def __repr__(self) -> str:
        return f"<BusinessCalendar {self.timezone} {dict(self.calendar.hours)}>"

    # ---- queries -------------------------------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        t, _, year = self._locate(at)
        k = bisect_right(year.starts, t) - 1
        return k >= 0 and t < year.ends[k]

    def next_open(self, at: datetime) -> datetime:
        """`at` itself (in UTC) if the calendar is open then, else the next instant it opens."""
        t, number, year = self._locate(at)
        k = bisect_right(year.starts, t) - 1
        if k >= 0 and t < year.ends[k]:
            return _instant(t)
        if k + 1 < len(year.starts):
            return _instant(year.starts[k + 1])
        for _ in range(_MAX_CLOSED_YEARS):
            number += 1
            year = self._year(number)
            if year.starts:
                return _instant(year.starts[0])
        raise ValueError(f"the calendar does not open within {_MAX_CLOSED_YEARS} years after {at.isoformat()}")

    def open_intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open time within [start, end): disjoint half-open UTC pieces in order, each as long as possible.

        Pieces that touch are one, also across midnight and years (a 24x7 calendar gives one piece).
        """
        t0, number, year = self._locate(start)
        t1 = _micros(end)
        return self._pieces(t0, t1, number, year)

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """The open time in [start, end), in seconds; 0 if end <= start."""
        t0, first, year0 = self._locate(start)
        t1, last, year1 = self._locate(end)
        if t1 <= t0:
            return 0.0
        if first == last:
            return (_open_before(year1, t1) - _open_before(year0, t0)) / 1_000_000
        between = sum(self._year(number).before[-1] for number in range(first + 1, last))
        return (year0.before[-1] - _open_before(year0, t0) + between + _open_before(year1, t1)) / 1_000_000

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """The instant at which a business clock started at `start` reaches `seconds` (rounded to the microsecond).

        For seconds > 0: the earliest instant t with business_seconds(start, t) == seconds — so it can be the end of
        an open interval (Friday 17:00, not Monday 09:00). For seconds == 0: next_open(start), where the clock starts
        counting (start itself when open); that is also the limit of the first case as seconds shrink to 0.
        Negative seconds raise ValueError.
        """
        if not seconds >= 0:  # also refuses NaN
            raise ValueError(f"business seconds to add must be 0 or more, not {seconds}")
        needed = round(seconds * 1_000_000)
        if needed == 0:
            return self.next_open(start)
        t, number, year = self._locate(start)
        target = _open_before(year, t) + needed  # in open microseconds since the start of `year`
        closed_years = 0
        while target > year.before[-1]:
            target -= year.before[-1]
            closed_years = closed_years + 1 if not year.starts else 0
            if closed_years > _MAX_CLOSED_YEARS:
                raise ValueError(f"the calendar does not open within {_MAX_CLOSED_YEARS} years")
            number += 1
            year = self._year(number)
        k = bisect_left(year.before, target) - 1  # before[k] < target <= before[k + 1]: it falls in interval k
        return _instant(year.starts[k] + target - year.before[k])

    def closed_reason(self, day: date) -> str | None:
        """Why a local day is closed all day: "closure", "holiday: NAME" or "weekend" (a day of the week without
        hours), in that order of precedence; None on a day with hours."""
        if day in self._closures:
            return "closure"
        name = self._year(day.year).holidays.get(day)
        if name is not None:
            return f"holiday: {name}"
        if not self._week[day.weekday()]:
            return "weekend"
        return None

    def describe_day(self, day: date) -> str:
        """One line for a local day, for people (`itsm sla explain`):

        "Mon 2026-03-30 09:00–17:00 Europe/Paris", "Mon 2026-04-06 closed (holiday: Easter Monday)", and on a day the
        clocks change, what it really lasts: "Sun 2026-03-29 00:00–24:00 Europe/Paris (clocks change: 23 h open)".
        """
        label = f"{DAYS[day.weekday()].capitalize()} {day.isoformat()}"
        reason = self.closed_reason(day)
        if reason is not None:
            return f"{label} closed ({reason})"
        hours = self._week[day.weekday()]
        text = f"{label} {', '.join(f'{_hhmm(a)}–{_hhmm(b)}' for a, b in hours)} {self.timezone}"
        nominal = sum(b - a for a, b in hours) * 60
        real = sum(max(0, self._utc(day, b) - self._utc(day, a)) for a, b in hours) // 1_000_000
        return text if real == nominal else f"{text} (clocks change: {real / 3600:g} h open)"

    # ---- building ------------------------------------------------------------------------------------------------

    def _locate(self, at: datetime) -> tuple[int, int, _Year]:
        """The instant in microseconds, its local year and that year's intervals."""
        t = _micros(at)
        number = at.year  # the local year is this one or a neighbour (offsets are under a day)
        span = self._spans.get(number)
        if span is not None and span[0] <= t < span[1]:
            return t, number, span[2]
        while t < self._year_start(number):
            number -= 1
        while t >= self._year_start(number + 1):
            number += 1
        year = self._year(number)
        self._spans[number] = (self._year_start(number), self._year_start(number + 1), year)
        return t, number, year

    def _year_start(self, number: int) -> int:
        start = self._year_starts.get(number)
        if start is None:
            start = self._year_starts[number] = self._utc(date(number, 1, 1), 0)
        return start

    def _year(self, number: int) -> _Year:
        year = self._years.get(number)
        if year is None:
            year = self._years[number] = self._build(number)
        return year

    def _build(self, number: int) -> _Year:
        names: dict[date, str] = {}
        for source in self.calendar.holidays:
            for day, name in source.entity(number).items():
                names[day] = f"{names[day]}; {name}" if day in names and name not in names[day] else name
        starts: list[int] = []
        ends: list[int] = []
        before = [0]
        day, one_day = date(number, 1, 1), timedelta(days=1)
        while day.year == number:
            if day not in names and day not in self._closures:
                for first, last in self._week[day.weekday()]:
                    start, end = self._utc(day, first), self._utc(day, last)
                    if start >= end:
                        continue  # wholly inside the hour skipped when clocks spring forward
                    if ends and ends[-1] == start:
                        ends[-1] = end
                        before[-1] += end - start
                    else:
                        starts.append(start)
                        ends.append(end)
                        before.append(before[-1] + end - start)
            day += one_day
        return _Year(starts, ends, before, names)

    def _utc(self, day: date, minutes: int) -> int:
        """The first instant (UTC microseconds) at which the local clock reads `day` + `minutes` or later."""
        wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
        local = wall.replace(tzinfo=self._zone)  # fold=0: an ambiguous time is its first occurrence
        utc = local.astimezone(UTC)
        if self._zone is UTC or utc.astimezone(self._zone).replace(tzinfo=None) == wall:
            return (utc - _EPOCH) // _MICROSECOND
        # Skipped by a jump forward. Read with the offset after the jump (fold=1) it falls before the jump, with the
        # offset before (fold=0) after it: bisect for the jump, which tz data puts on a whole second.
        low = (local.replace(fold=1).astimezone(UTC) - _EPOCH) // _SECOND
        high = (utc - _EPOCH) // _SECOND
        while high - low > 1:
            middle = (low + high) // 2
            reads = (_EPOCH + timedelta(seconds=middle)).astimezone(self._zone).replace(tzinfo=None)
            low, high = (low, middle) if reads >= wall else (middle, high)
        return high * 1_000_000

    def _pieces(self, t0: int, t1: int, number: int, year: _Year) -> Iterator[tuple[datetime, datetime]]:
        piece: tuple[int, int] | None = None
        while t0 < t1:
            k = bisect_right(year.ends, t0)  # the first interval ending after t0
            for start, end in zip(year.starts[k:], year.ends[k:], strict=True):
                if start >= t1:
                    break
                start, end = max(start, t0), min(end, t1)
                if piece is not None and piece[1] == start:
                    piece = (piece[0], end)
                else:
                    if piece is not None:
                        yield _instant(piece[0]), _instant(piece[1])
                    piece = (start, end)
            number += 1
            t0 = self._year_start(number)
            if t0 < t1:
                year = self._year(number)
        if piece is not None:
            yield _instant(piece[0]), _instant(piece[1])
