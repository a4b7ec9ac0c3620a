"""Business calendars: hours, weekends, holidays and closures, DST in two zones, the SLA arithmetic and its errors."""

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from itsm_core import calendars
from itsm_core.calendars import Calendar, HolidaySource

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600.0


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)


def compiled(**config):
    return Calendar.model_validate(config).compile()


# ---- hours, weekends ------------------------------------------------------------------------------------------------


def test_the_default_is_nine_to_five_on_weekdays_in_utc():
    office = Calendar().compile()
    assert office.is_open(utc(2026, 3, 27, 9))  # a Friday
    assert office.is_open(utc(2026, 3, 27, 16, 59, 59))
    assert not office.is_open(utc(2026, 3, 27, 17))  # the end is excluded
    assert not office.is_open(utc(2026, 3, 27, 8, 59))
    assert not office.is_open(utc(2026, 3, 28, 12))  # Saturday
    assert office.closed_reason(date(2026, 3, 28)) == "weekend"
    assert office.closed_reason(date(2026, 3, 27)) is None
    assert office.business_seconds(utc(2026, 3, 23), utc(2026, 3, 30)) == 5 * 8 * HOUR


def test_hours_syntax_days_ranges_lists_any_case_and_lunch_breaks():
    shop = compiled(hours={"MON-wed, Fri": ["09:00-12:30", "13:30-17:00"], "sat": ["10:00-12:00"], "sun": []})
    monday = date(2026, 3, 30)
    assert [shop.closed_reason(monday + timedelta(days=n)) for n in range(7)] == [
        None, None, None, "weekend", None, None, "weekend"
    ]  # fmt: skip
    assert shop.business_seconds(utc(2026, 3, 30), utc(2026, 4, 6)) == 4 * 7 * HOUR + 2 * HOUR
    assert not shop.is_open(utc(2026, 3, 30, 13))  # lunch
    assert shop.next_open(utc(2026, 3, 30, 13)) == utc(2026, 3, 30, 13, 30)


def test_touching_intervals_are_one_piece_also_over_midnight():
    night = compiled(hours={"mon-fri": ["00:00-06:00", "22:00-24:00"]})
    pieces = list(night.open_intervals(utc(2026, 3, 30, 12), utc(2026, 4, 1, 12)))  # Monday noon to Wednesday noon
    assert pieces == [(utc(2026, 3, 30, 22), utc(2026, 3, 31, 6)), (utc(2026, 3, 31, 22), utc(2026, 4, 1, 6))]
    split = compiled(hours={"mon": ["09:00-12:00", "12:00-17:00"]})
    assert list(split.open_intervals(utc(2026, 3, 30), utc(2026, 3, 31))) == [
        (utc(2026, 3, 30, 9), utc(2026, 3, 30, 17))
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"timezone": "Europe/Pariss"}, "'Europe/Pariss' is not an IANA time zone"),
        ({"hours": {"mon-fri": ["17:00-09:00"]}}, r"hours\['mon-fri'\]: '17:00-09:00' ends before it starts"),
        ({"hours": {"mon": ["09:00-09:00"]}}, r"hours\['mon'\]: '09:00-09:00' is empty"),
        ({"hours": {"mon": ["09:00-12:00", "11:00-13:00"]}}, r"hours\['mon'\]: intervals overlap around 11:00"),
        ({"hours": {"mon-fri": ["09:00-17:00"], "fri": ["08:00-12:00"]}}, r"hours\['fri'\]: fri is already given"),
        ({"hours": {"mon,mon-tue": ["09:00-17:00"]}}, "mon is named twice"),
        ({"hours": {"fri-mon": ["09:00-17:00"]}}, "week order, mon to sun: write fri-sun,mon"),
        ({"hours": {"weekdays": ["09:00-17:00"]}}, r"hours\['weekdays'\]: name days as mon … sun"),
        ({"hours": {"mon": ["9h-17h"]}}, r"'9h-17h' is not an interval HH:MM-HH:MM"),
        ({"hours": {"mon": ["24:00-24:00"]}}, "24:00 only as an end"),
        ({"hours": {"mon": ["09:60-10:00"]}}, "is not a time of day"),
        ({"hours": {}}, "the calendar would never open"),
        ({"hours": {"sat-sun": []}}, "the calendar would never open"),
        ({"holidays": [{"country": "XX"}]}, "knows no country 'XX'"),
        ({"holidays": [{"country": "DE", "subdivision": "Bavaria-ish"}]}, r"DE has no subdivision 'Bavaria-ish'.*BY"),
        ({"holidays": [{"country": "DE", "language": "fr"}]}, "holiday names for DE come in de, en_US"),
        ({"hours": {"mon": ["09:00-17:00"]}, "timezone": "UTC", "open": True}, "Extra inputs are not permitted"),
    ],
)
def test_configuration_mistakes_are_refused_with_a_message_naming_them(config, message):
    with pytest.raises(ValidationError, match=message):
        Calendar.model_validate(config)


def test_always_is_24x7_utc_and_equals_plain_subtraction():
    clock = Calendar.always().compile()
    assert Calendar.always().hours == {"mon-sun": ["00:00-24:00"]} and clock.timezone == "UTC"
    rng = random.Random(7)
    for _ in range(300):
        a = utc(2026, 1, 1) + timedelta(microseconds=rng.randrange(2 * 365 * 86400 * 10**6))
        b = a + timedelta(microseconds=rng.randrange(40 * 86400 * 10**6))
        assert clock.business_seconds(a, b) == (b - a).total_seconds()
        seconds = rng.randrange(40 * 86400 * 10**6) / 10**6
        assert clock.add_business_seconds(a, seconds) == a + timedelta(seconds=seconds)
    year = list(clock.open_intervals(utc(2026, 6, 1), utc(2028, 6, 1)))
    assert year == [(utc(2026, 6, 1), utc(2028, 6, 1))]  # one piece, across nights and New Years


# ---- holidays and closures ------------------------------------------------------------------------------------------


def test_holidays_by_country_and_subdivision():
    bavaria = compiled(timezone="Europe/Berlin", holidays=[{"country": "DE", "subdivision": "BY"}])
    berlin = compiled(timezone="Europe/Berlin", holidays=[{"country": "DE", "subdivision": "BE"}])
    epiphany = date(2026, 1, 6)  # a Tuesday: a holiday in Bavaria, not in Berlin
    assert bavaria.closed_reason(epiphany) == "holiday: Epiphany"
    assert not bavaria.is_open(local(PARIS, 2026, 1, 6, 10))
    assert berlin.closed_reason(epiphany) is None
    assert berlin.is_open(local(PARIS, 2026, 1, 6, 10))
    assert bavaria.closed_reason(date(2026, 10, 3)) == "holiday: German Unity Day"  # national: both
    assert berlin.closed_reason(date(2027, 3, 8)) == "holiday: Women's Day"  # Berlin only
    assert bavaria.closed_reason(date(2027, 3, 8)) is None


def test_subdivisions_by_name_or_any_case_and_names_in_english_by_default():
    assert HolidaySource(country="us", subdivision="California") == HolidaySource(country="US", subdivision="CA")
    assert HolidaySource(country="DE", subdivision="by").subdivision == "BY"
    german = compiled(holidays=[{"country": "DE", "language": "de"}])
    assert german.closed_reason(date(2026, 4, 6)) == "holiday: Ostermontag"
    us = compiled(holidays=[{"country": "US"}])
    assert us.closed_reason(date(2026, 7, 3)) == "holiday: Independence Day (observed)"  # the 4th is a Saturday


def test_closures_and_which_reason_wins():
    calendar = compiled(holidays=[{"country": "FR"}], closures=["2026-12-24", "2026-12-25", "2026-12-26"])
    assert calendar.closed_reason(date(2026, 12, 24)) == "closure"
    assert calendar.closed_reason(date(2026, 12, 25)) == "closure"  # also Christmas: the configured closure wins
    assert calendar.closed_reason(date(2026, 12, 26)) == "closure"  # also a Saturday
    assert calendar.closed_reason(date(2027, 1, 2)) == "weekend"
    assert calendar.closed_reason(date(2026, 11, 1)) == "holiday: All Saints' Day"  # a Sunday: the holiday is named
    assert calendar.business_seconds(utc(2026, 12, 21), utc(2026, 12, 28)) == 3 * 8 * HOUR


def test_add_business_seconds_across_a_weekend_and_holidays():
    # Alsace-Moselle (57) closes Good Friday as well as Easter Monday; the rest of France only Easter Monday.
    moselle = compiled(timezone="Europe/Paris", holidays=[{"country": "FR", "subdivision": "57"}])
    france = compiled(timezone="Europe/Paris", holidays=[{"country": "FR"}])
    thursday = local(PARIS, 2026, 4, 2, 16)
    assert moselle.add_business_seconds(thursday, 2 * HOUR) == local(PARIS, 2026, 4, 7, 10)
    assert france.add_business_seconds(thursday, 2 * HOUR) == local(PARIS, 2026, 4, 3, 10)
    assert moselle.business_seconds(thursday, local(PARIS, 2026, 4, 7, 10)) == 2 * HOUR
    assert moselle.describe_day(date(2026, 4, 3)) == "Fri 2026-04-03 closed (holiday: Good Friday)"


def test_years_are_built_lazily_and_once(monkeypatch):
    fetched: list[int] = []
    real = calendars.country_holidays

    def counting(*args, **kwargs):
        if kwargs.get("years") is not None:
            fetched.append(kwargs["years"])
        return real(*args, **kwargs)

    monkeypatch.setattr(calendars, "country_holidays", counting)
    calendar = compiled(timezone="Europe/Paris", holidays=[{"country": "FR"}])
    assert fetched == []  # compiling builds nothing
    calendar.business_seconds(utc(2026, 6, 1), utc(2026, 6, 30))
    calendar.add_business_seconds(utc(2026, 6, 1), 100 * HOUR)
    calendar.is_open(utc(2026, 7, 14, 10))
    assert fetched == [2026]
    # 23:30 UTC on New Year's Eve is already 2027 in Paris: only 2027 is needed
    calendar.is_open(utc(2026, 12, 31, 23, 30))
    calendar.business_seconds(utc(2026, 12, 20), utc(2027, 1, 10))
    assert fetched == [2026, 2027]


def test_across_new_year():
    calendar = compiled(timezone="Europe/Paris", holidays=[{"country": "FR"}])
    # Thursday 31 December 16:00 to Monday 4 January 10:00: 1 h, New Year's Day, a weekend, 1 h
    assert calendar.business_seconds(local(PARIS, 2026, 12, 31, 16), local(PARIS, 2027, 1, 4, 10)) == 2 * HOUR
    assert calendar.add_business_seconds(local(PARIS, 2026, 12, 31, 16), 2 * HOUR) == local(PARIS, 2027, 1, 4, 10)
    assert calendar.next_open(local(PARIS, 2026, 12, 31, 18)) == local(PARIS, 2027, 1, 4, 9)


# ---- time zones and DST ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [(PARIS, date(2026, 3, 29), date(2026, 10, 25)), (NEW_YORK, date(2026, 3, 8), date(2026, 11, 1))],
)
def test_days_when_clocks_change(zone, spring, autumn):
    def day_length(day: date, interval: str) -> float:
        calendar = compiled(timezone=zone.key, hours={"sun": [interval]})  # both days are Sundays
        midnight = datetime.combine(day, time(), zone)
        return calendar.business_seconds(midnight - timedelta(hours=3), midnight + timedelta(hours=30)) / HOUR

    assert day_length(spring, "00:00-24:00") == 23
    assert day_length(autumn, "00:00-24:00") == 25
    assert day_length(spring, "09:00-17:00") == 8
    assert day_length(autumn, "09:00-17:00") == 8
    assert day_length(spring, "02:00-04:00") == 1  # only the hour that exists
    assert day_length(spring, "02:15-02:45") == 0  # wholly skipped
    assert day_length(spring, "02:30-03:15") == 0.25  # 03:00-03:15
    # fall-back: the repeated hour is lived twice, and an ambiguous wall time is its first occurrence
    repeated = 1 if zone is NEW_YORK else 2  # 01:00-02:00 in New York, 02:00-03:00 in Paris
    assert day_length(autumn, f"0{repeated}:00-0{repeated + 1}:00") == 2
    assert day_length(autumn, f"00:00-0{repeated}:30") == repeated + 0.5
    assert compiled(timezone=zone.key, hours={"sun": ["00:00-24:00"]}).describe_day(spring) == (
        f"Sun {spring} 00:00–24:00 {zone.key} (clocks change: 23 h open)"
    )


def test_ambiguous_and_skipped_wall_times_resolve_to_the_first_instant_reading_them():
    # New York, 2026-11-01: 01:00-02:00 is lived at 05:00-06:00 UTC (EDT) and again at 06:00-07:00 UTC (EST).
    early = compiled(timezone="America/New_York", hours={"sun": ["00:00-01:30"]})
    assert list(early.open_intervals(utc(2026, 11, 1), utc(2026, 11, 2))) == [
        (utc(2026, 11, 1, 4), utc(2026, 11, 1, 5, 30))
    ]
    assert not early.is_open(utc(2026, 11, 1, 6, 15))  # 01:15 EST, the second time round: after the end
    # Paris, 2026-03-29: clocks jump from 02:00 to 03:00 at 01:00 UTC; 02:30 resolves to that jump
    skipped = compiled(timezone="Europe/Paris", hours={"sun": ["02:30-05:00"]})
    assert next(iter(skipped.open_intervals(utc(2026, 3, 29), utc(2026, 3, 30)))) == (
        utc(2026, 3, 29, 1), utc(2026, 3, 29, 3)
    )  # fmt: skip
    assert skipped.next_open(utc(2026, 3, 28)) == utc(2026, 3, 29, 1)


def test_local_hours_follow_the_zone_offset_through_the_year():
    new_york = compiled(timezone="America/New_York")
    assert new_york.next_open(utc(2026, 1, 5)) == utc(2026, 1, 5, 14)  # EST: 09:00 is 14:00 UTC
    assert new_york.next_open(utc(2026, 7, 6)) == utc(2026, 7, 6, 13)  # EDT: 13:00 UTC
    # the week after the US changed clocks and before Europe did: the usual 6 h gap is 5 h
    paris = compiled(timezone="Europe/Paris")
    assert paris.next_open(utc(2026, 3, 10)) == utc(2026, 3, 10, 8)
    assert new_york.next_open(utc(2026, 3, 10)) == utc(2026, 3, 10, 13)


# ---- the SLA arithmetic ---------------------------------------------------------------------------------------------


def test_a_start_outside_hours_counts_from_the_next_opening():
    office = compiled(timezone="Europe/Paris")
    saturday = local(PARIS, 2026, 3, 28, 11)
    assert office.business_seconds(saturday, local(PARIS, 2026, 3, 30, 10, 30)) == 1.5 * HOUR
    assert office.add_business_seconds(saturday, 1.5 * HOUR) == local(PARIS, 2026, 3, 30, 10, 30)
    assert office.business_seconds(local(PARIS, 2026, 3, 30, 7), local(PARIS, 2026, 3, 30, 8)) == 0
    assert office.business_seconds(local(PARIS, 2026, 3, 30, 12), local(PARIS, 2026, 3, 30, 11)) == 0  # end < start


def test_adding_zero_and_filling_a_day_exactly():
    office = compiled(timezone="Europe/Paris")
    friday_noon = local(PARIS, 2026, 3, 27, 12)
    assert office.add_business_seconds(friday_noon, 0) == friday_noon  # open: start itself
    assert office.add_business_seconds(local(PARIS, 2026, 3, 27, 18), 0) == local(PARIS, 2026, 3, 30, 9)
    assert office.add_business_seconds(friday_noon, 5 * HOUR) == local(PARIS, 2026, 3, 27, 17)  # not Monday 09:00
    assert office.add_business_seconds(friday_noon, 5 * HOUR + 1e-6) == local(PARIS, 2026, 3, 30, 9, 0, 0, 1)
    with pytest.raises(ValueError, match="0 or more"):
        office.add_business_seconds(friday_noon, -1)


def test_next_open_is_open_and_open_intervals_clip_to_the_span():
    office = compiled(timezone="Europe/Paris")
    assert office.next_open(local(PARIS, 2026, 3, 27, 9)) == local(PARIS, 2026, 3, 27, 9)
    assert office.next_open(local(PARIS, 2026, 3, 27, 17)) == local(PARIS, 2026, 3, 30, 9)
    pieces = list(office.open_intervals(local(PARIS, 2026, 3, 27, 16), local(PARIS, 2026, 3, 30, 10)))
    assert pieces == [
        (local(PARIS, 2026, 3, 27, 16), local(PARIS, 2026, 3, 27, 17)),
        (local(PARIS, 2026, 3, 30, 9), local(PARIS, 2026, 3, 30, 10)),
    ]
    assert all(t.tzinfo is UTC for piece in pieces for t in piece)
    assert list(office.open_intervals(local(PARIS, 2026, 3, 28), local(PARIS, 2026, 3, 29))) == []


def test_naive_datetimes_are_refused_everywhere():
    office = Calendar().compile()
    naive, aware = datetime(2026, 3, 27, 10), utc(2026, 3, 27, 10)
    for call in (
        lambda: office.is_open(naive),
        lambda: office.next_open(naive),
        lambda: office.open_intervals(naive, aware),
        lambda: office.open_intervals(aware, naive),
        lambda: office.business_seconds(aware, naive),
        lambda: office.add_business_seconds(naive, 60),
    ):
        with pytest.raises(ValueError, match="naive datetime"):
            call()


def test_outputs_are_utc_whatever_zone_the_input_is_in():
    office = compiled(timezone="Europe/Paris")
    out = office.add_business_seconds(local(NEW_YORK, 2026, 3, 27, 4), HOUR)  # 09:00 in Paris
    assert out.tzinfo is UTC and out == utc(2026, 3, 27, 9)
    assert office.next_open(local(PARIS, 2026, 3, 27, 10)).tzinfo is UTC


def test_describe_day():
    office = compiled(timezone="Europe/Paris", hours={"mon-fri": ["09:00-12:30", "13:30-17:00"]})
    assert office.describe_day(date(2026, 3, 30)) == "Mon 2026-03-30 09:00–12:30, 13:30–17:00 Europe/Paris"
    assert office.describe_day(date(2026, 3, 29)) == "Sun 2026-03-29 closed (weekend)"


def _reference_seconds(zone: ZoneInfo, hours: list[tuple[time, time]], closed: set[date], a: datetime, b: datetime):
    """Business seconds counted the slow, obvious way: every local day, each interval with zoneinfo (fold=0)."""
    total = timedelta()
    day = a.astimezone(zone).date() - timedelta(days=1)
    while day <= b.astimezone(zone).date() + timedelta(days=1):
        if day.weekday() < 5 and day not in closed:
            for first, last in hours:
                start = datetime.combine(day, first, zone).astimezone(UTC)
                end = datetime.combine(day, last, zone).astimezone(UTC)
                total += max(timedelta(), min(end, b) - max(start, a))
        day += timedelta(days=1)
    return total.total_seconds()


@pytest.mark.parametrize("zone", [PARIS, NEW_YORK], ids=str)
def test_adding_then_measuring_gives_back_the_same_seconds(zone):
    country = "FR" if zone is PARIS else "US"
    config = Calendar(
        timezone=zone.key,
        hours={"mon-fri": ["08:30-12:00", "13:00-18:15"]},
        holidays=[HolidaySource(country=country)],
        closures=[date(2026, 8, 14), date(2027, 12, 24)],
    )
    calendar = config.compile()
    closed = set(config.closures) | {d for y in (2026, 2027, 2028) for d in HolidaySource(country=country).entity(y)}
    hours = [(time(8, 30), time(12)), (time(13), time(18, 15))]
    rng = random.Random(20260329)
    span = int((datetime(2028, 1, 1, tzinfo=UTC) - datetime(2026, 1, 1, tzinfo=UTC)).total_seconds())
    for _ in range(300):
        a = utc(2026, 1, 1) + timedelta(microseconds=rng.randrange(span * 10**6))
        seconds = rng.choice([0, rng.randrange(1, 3600), rng.randrange(30 * 8 * 3600 * 10**6) / 10**6])
        t = calendar.add_business_seconds(a, seconds)
        assert calendar.business_seconds(a, t) == seconds, (a, seconds, t)
        if seconds:
            assert calendar.business_seconds(a, t - timedelta(microseconds=1)) < seconds  # the earliest such t
            assert calendar.is_open(t - timedelta(microseconds=1))
        else:
            assert t == calendar.next_open(a)
        b = a + timedelta(microseconds=rng.randrange(30 * 86400 * 10**6))
        assert calendar.business_seconds(a, b) == pytest.approx(_reference_seconds(zone, hours, closed, a, b), abs=1e-6)
        assert calendar.business_seconds(a, b) == pytest.approx(
            sum((end - start).total_seconds() for start, end in calendar.open_intervals(a, b)), abs=1e-6
        )
