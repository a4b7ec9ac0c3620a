"""SLA clocks replayed from a ticket's history: business hours, weekends, holidays, DST in two zones, pauses,
reopening, policy and calendar changes, first response, OLAs, due and breach times, and configuration errors.

Histories are written as local wall-clock times in the calendar's zone; every expected figure is worked out by hand
in the comment next to it (CET = UTC+1, CEST = UTC+2, EST = UTC-5, EDT = UTC-4).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from itsm_core.calendars import BusinessCalendar, Calendar
from itsm_core.config import HubConfig
from itsm_core.rules.conditions import RequesterGroups
from itsm_core.rules.sla import TRACKED, Change, Clock, SlaConfig, SlaRules, parse_duration

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
MINUTE, HOUR = 60.0, 3600.0

CALENDARS: dict[str, dict[str, Any]] = {
    "paris": {"timezone": "Europe/Paris", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": [{"country": "FR"}]},
    "paris-lunch": {"timezone": "Europe/Paris", "hours": {"mon-fri": ["09:00-12:30", "13:30-17:00"]}},
    "paris-all-day": {"timezone": "Europe/Paris", "hours": {"mon-sun": ["00:00-24:00"]}},
    "new-york": {
        "timezone": "America/New_York",
        "hours": {"mon-fri": ["09:00-17:00"]},
        "holidays": [{"country": "US"}],
    },
    "new-york-all-day": {"timezone": "America/New_York", "hours": {"mon-sun": ["00:00-24:00"]}},
}


# ---- helpers ---------------------------------------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def at(zone: ZoneInfo, text: str) -> datetime:
    """A wall-clock time in `zone` ("2026-03-27 16:00") as UTC. In the hour repeated when clocks fall back, give the
    offset to say which one ("2026-10-25 02:30+02:00" is the first, "+01:00" the second)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def history(zone: ZoneInfo, opened: str, *events: tuple[str, str, Any], **created: Any):
    """A ticket opened at local time `opened` with `created` values (status new, priority 3 unless given), then
    `events` (local time, field, new value) in order. Returns the ticket's row (its current values) and its audit
    trail as the store has it: one change per non-empty tracked field at creation (old None), then each event with
    the old value it replaced."""
    row: dict[str, Any] = {
        "id": 1,
        "created_at": at(zone, opened),
        "kind": "incident",
        "title": "VPN drops every few minutes",
        "description": "",
        "requester": "ann@example.org",
        **dict.fromkeys(TRACKED),
        "status": "new",
        "priority": 3,
        **created,
    }
    changes = [Change(row["created_at"], name, None, row[name]) for name in TRACKED if row[name] not in (None, "")]
    for when, name, value in events:
        changes.append(Change(at(zone, when), name, row[name], value))
        row[name] = value
    return row, changes


def compiled(**overrides: dict[str, Any]) -> dict[str, BusinessCalendar]:
    """The test calendars compiled; `overrides` replaces some by name (a changed calendar)."""
    return {name: Calendar.model_validate(overrides.get(name, c)).compile() for name, c in CALENDARS.items()}


def policies(calendar: str | None = "paris", p1: str = "4h", p2: str = "8h", p3: str = "2d") -> list[dict[str, Any]]:
    """P1 and P2 by priority, then a catch-all (P3 and the rest); first response 30m / 1h / 4h."""
    targets = {"p1": ("30m", p1), "p2": ("1h", p2), "p3": ("4h", p3)}
    return [
        {
            "name": name,
            **({"when": {"field": "priority", "equals": int(name[1])}} if name != "p3" else {}),
            **({"calendar": calendar} if calendar else {}),
            "targets": {"first_response": first, "resolution": resolution},
        }
        for name, (first, resolution) in targets.items()
    ]


def rules(calendars: dict[str, BusinessCalendar] | None = None, **section: Any) -> SlaRules:
    section.setdefault("policies", policies())
    section.setdefault("olas", [{"name": "network-ola", "group": "network", "calendar": "paris", "resolution": "4h"}])
    return SlaRules(SlaConfig.model_validate(section), calendars if calendars is not None else compiled())


def clocks(sla: SlaRules, zone: ZoneInfo, now: str, ticket, replied: str | None = None) -> dict[str, Clock]:
    row, changes = ticket
    found = sla.compute(row, changes, at(zone, now), at(zone, replied) if replied else None)
    return {clock.metric: clock for clock in found}


def pieces(clock: Clock) -> list[tuple[str, str | None, float, bool]]:
    return [(p.status, p.policy, p.counted, p.paused) for p in clock.pieces]


# ---- configuration ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900.0), ("4h", 14_400.0), ("1.5h", 5400.0), ("2d", 172_800.0), ("-1h", -3600.0), (" 30 m ", 1800.0),
     (90, 90.0), (2.5, 2.5)],
)  # fmt: skip
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "4", "4 hours", "1w", "h", "4h30m", "--1h", "1,5h"])
def test_a_bad_duration_says_how_to_write_one(text):
    with pytest.raises(ValueError, match=r"is not a duration; write e\.g\. 15m, 4h, 2d"):
        parse_duration(text)


def test_a_valid_section_reads_durations_and_sorts_warnings():
    config = SlaConfig.model_validate(
        {
            "warn_at": [90, 50, 75, 50],
            "policies": [{"name": "p1", "targets": {"first_response": "15m", "resolution": "2d"}}],
            "olas": [{"name": "net", "group": "network", "resolution": 7200}],
            "escalations": [{"name": "lead", "at": "-1h", "actions": [{"notify": "lead"}, {"raise_priority": 1}]}],
        }
    )
    assert config.warn_at == [50, 75, 90]
    assert config.policies[0].targets.first_response == 900 and config.policies[0].targets.resolution == 2 * 86_400
    assert config.olas[0].resolution == 7200
    assert config.escalations[0].at == -3600 and config.escalations[0].metric == "resolution"
    assert config.pause_statuses == ["pending"]  # the default


def _policy(**targets: Any) -> dict[str, Any]:
    return {"policies": [{"name": "p", "targets": targets}]}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (_policy(resolution="4 hours"), r"'4 hours' is not a duration; write e\.g\. 15m, 4h, 2d"),
        (_policy(resolution="0m"), "a target must be longer than zero"),
        (_policy(first_response="-1h"), "a target must be longer than zero"),
        (_policy(resolution=0), "a target must be longer than zero"),
        ({"olas": [{"name": "o", "group": "network", "resolution": "soon"}]}, "'soon' is not a duration"),
        ({"olas": [{"name": "o", "group": "network", "resolution": "0h"}]}, "a target must be longer than zero"),
        ({"olas": [{"name": "o", "group": "network", "resolution": "-2h"}]}, "a target must be longer than zero"),
        ({"escalations": [{"name": "e", "at": "1 hour", "actions": [{"notify": "x"}]}]}, "'1 hour' is not a duration"),
        ({"warn_at": [0, 50]}, "warnings are percentages between 0 and 100"),
        ({"warn_at": [100]}, r"between 0 and 100 \(100 % is the breach\)"),
        ({"warn_at": [50, 120]}, "warnings are percentages between 0 and 100"),
        ({"pause_statuses": ["pending", "resolved"]}, "cannot pause on resolved; pause on any of assigned, "
                                                      "in_progress, new, pending"),
        ({"pause_statuses": ["on_hold"]}, "cannot pause on on_hold"),
        ({"policies": [{"name": "p1", "targets": {}}, {"name": "p2", "targets": {}}, {"name": "p1", "targets": {}}]},
         "name used twice: p1 "),
        ({"olas": [{"name": "o", "group": "a", "resolution": "1h"}, {"name": "o", "group": "b", "resolution": "2h"}]},
         "name used twice: o "),
        ({"escalations": [{"name": "e", "actions": [{"notify": "a"}]}, {"name": "e", "actions": [{"notify": "b"}]}]},
         "name used twice: e "),
        ({"escalations": [{"name": "e", "actions": [{"notify": "lead", "reassign": "major"}]}]},
         "an action is exactly one of notify, reassign, raise_priority"),
        ({"escalations": [{"name": "e", "actions": [{}]}]}, "an action is exactly one of notify, reassign"),
        ({"escalations": [{"name": "e", "actions": [{"raise_priority": 0}]}]}, "greater than or equal to 1"),
        ({"escalations": [{"name": "e", "actions": []}]}, "at least 1 item"),
        ({"escalations": [{"name": "e", "metric": "ola", "actions": [{"notify": "x"}]}]}, "first_response"),
        ({"policies": [{"name": "p", "target": {"resolution": "4h"}}]}, "target\n  Extra inputs are not permitted"),
        ({"policies": [{"name": "P 1", "targets": {}}]}, "String should match pattern"),
        ({"policies": [{"name": "p", "when": {"field": "priority", "equal": 1}, "targets": {}}]}, "equal"),
    ],
)  # fmt: skip
def test_configuration_errors_say_what_is_wrong(section, message):
    with pytest.raises(ValueError, match=message):
        SlaConfig.model_validate(section)


def test_the_hub_config_refuses_a_policy_on_an_unknown_calendar():
    section = {"policies": [{"name": "p1", "calendar": "lyon", "targets": {"resolution": "4h"}}]}
    with pytest.raises(ValueError, match=r"rules\.sla\.policies\[0\]\.calendar: no calendar 'lyon'.*known: paris"):
        HubConfig.model_validate({"calendars": {"paris": CALENDARS["paris"]}, "rules": {"sla": section}})


def test_the_hub_config_refuses_a_tenant_calendar_it_does_not_know_and_takes_24x7_on_policies():
    section = {"tenant_calendars": {"Root > Paris": "paris", "Root > Lyon": "lyon"}}
    with pytest.raises(ValueError, match=r"rules\.sla\.tenant_calendars\.Root > Lyon: no calendar 'lyon'"):
        HubConfig.model_validate({"calendars": {"paris": CALENDARS["paris"]}, "rules": {"sla": section}})
    with pytest.raises(ValueError, match=r"rules\.sla\.default_calendar: no calendar 'lyon'"):
        HubConfig.model_validate({"rules": {"sla": {"default_calendar": "lyon"}}})
    always = {"policies": [{"name": "p1", "calendar": "24x7", "targets": {"resolution": "4h"}}]}
    HubConfig.model_validate({"rules": {"sla": always}})  # the built-in name needs no definition


def test_a_policy_without_a_calendar_counts_in_the_tenants_calendar():
    """One P3 policy for every site; each site's own office hours (and holidays) count."""
    section = {
        "policies": [
            {"name": "p1", "when": {"field": "priority", "equals": 1}, "calendar": "24x7",
             "targets": {"resolution": "4h"}},
            {"name": "p2", "when": {"field": "priority", "equals": 2}, "calendar": "paris",
             "targets": {"resolution": "4h"}},
            {"name": "p3", "targets": {"resolution": "4h"}},
        ],
        "tenant_calendars": {"Paris": "paris", "New York": "new-york"},
    }  # fmt: skip
    sla = SlaRules(SlaConfig.model_validate(section), compiled())
    opened = "2026-03-13 16:00"  # a Friday, 16:00 in Paris = 11:00 in New York
    now = "2026-03-14 12:00"  # the Saturday after (Paris time)

    def resolution(tenant, priority=3):
        return clocks(sla, PARIS, now, history(PARIS, opened, tenant=tenant, priority=priority))["resolution"]

    paris, new_york, elsewhere = resolution("Paris"), resolution("New York"), resolution("Lyon")
    assert (paris.calendar, paris.used) == ("paris", 1 * HOUR)  # Fri 16:00-17:00 in Paris
    assert (new_york.calendar, new_york.used) == ("new-york", 6 * HOUR)  # Fri 11:00-17:00 in New York
    assert (elsewhere.calendar, elsewhere.used) == ("24x7", 20 * HOUR)  # no calendar for that tenant: every hour
    assert resolution("New York", priority=1).calendar == "24x7"  # a policy's own calendar wins
    assert resolution("New York", priority=2).calendar == "paris"
    defaulted = SlaRules(SlaConfig.model_validate({**section, "default_calendar": "paris-lunch"}), compiled())
    lyon = clocks(defaulted, PARIS, now, history(PARIS, opened, tenant="Lyon"))["resolution"]
    assert (lyon.calendar, lyon.used) == ("paris-lunch", 1 * HOUR)  # a tenant without its own: the default


def test_no_policy_no_clock():
    sla = rules(policies=[], olas=[])
    assert not sla.active
    assert clocks(sla, PARIS, "2026-06-09 10:00", history(PARIS, "2026-06-08 09:00")) == {}
    only_p1 = rules(policies=policies()[:1], olas=[])  # a P3 ticket: no policy matches it
    assert clocks(only_p1, PARIS, "2026-06-09 10:00", history(PARIS, "2026-06-08 09:00")) == {}


def test_a_policy_can_match_the_requesters_group():
    vip = {"name": "vip", "when": {"field": "requester_groups", "contains": "vip"}, "targets": {"resolution": "2h"}}
    section = SlaConfig.model_validate({"policies": [vip, *policies()]})
    directory = RequesterGroups({"vip": ["@board.example.org"]})
    sla = SlaRules(section, compiled(), directory)
    board = history(PARIS, "2026-06-08 09:00", requester="ceo@board.example.org")
    named_by_glpi = history(PARIS, "2026-06-08 09:00", custom_fields={"requester_groups": ["VIP"]})
    anyone = history(PARIS, "2026-06-08 09:00")
    now = "2026-06-08 10:00"
    assert clocks(sla, PARIS, now, board)["resolution"].policy == "vip"
    assert clocks(sla, PARIS, now, named_by_glpi)["resolution"].policy == "vip"
    assert clocks(sla, PARIS, now, anyone)["resolution"].policy == "p3"
    assert clocks(SlaRules(section, compiled()), PARIS, now, board)["resolution"].policy == "p3"  # no directory


# ---- business hours, weekends, outside hours, holidays ---------------------------------------------------------------


def test_a_weekend_does_not_count_and_the_due_time_skips_it():
    ticket = history(PARIS, "2026-03-13 16:00", priority=1)  # a Friday (CET)
    got = clocks(rules(), PARIS, "2026-03-16 10:30", ticket)  # the Monday after
    resolution = got["resolution"]
    assert (resolution.policy, resolution.calendar, resolution.target) == ("p1", "paris", 4 * HOUR)
    assert resolution.used == 2.5 * HOUR  # Fri 16:00-17:00 + Mon 09:00-10:30
    assert resolution.state == "running" and resolution.percent == 62.5
    assert resolution.due_at == utc(2026, 3, 16, 11)  # 1.5 h more: Mon 12:00 CET
    assert resolution.breached_at is None and resolution.stopped_at is None
    assert resolution.started_at == utc(2026, 3, 13, 15)
    assert pieces(resolution) == [("new", "p1", 2.5 * HOUR, False)]
    first = got["first_response"]  # 30 min: Fri 16:30
    assert (first.state, first.used, first.target, first.policy) == ("breached", 2.5 * HOUR, 30 * MINUTE, "p1")
    assert first.breached_at == first.due_at == utc(2026, 3, 13, 15, 30)


def test_a_ticket_opened_outside_business_hours_counts_from_the_opening():
    saturday = history(PARIS, "2026-03-14 10:00", priority=2)  # P2: first response 1 h, resolution 8 h
    sunday = clocks(rules(), PARIS, "2026-03-15 20:00", saturday)
    assert sunday["resolution"].used == sunday["first_response"].used == 0
    assert sunday["resolution"].state == sunday["first_response"].state == "running"
    assert sunday["first_response"].due_at == utc(2026, 3, 16, 9)  # Mon 10:00 CET
    assert sunday["resolution"].due_at == utc(2026, 3, 16, 16)  # Mon 17:00 CET
    monday = clocks(rules(), PARIS, "2026-03-16 09:45", saturday)
    assert monday["resolution"].used == monday["first_response"].used == 45 * MINUTE

    evening = history(PARIS, "2026-03-17 20:00", priority=1)  # a Tuesday evening
    wednesday = clocks(rules(), PARIS, "2026-03-18 09:10", evening)
    assert wednesday["first_response"].used == 10 * MINUTE
    assert wednesday["first_response"].due_at == utc(2026, 3, 18, 8, 30)  # Wed 09:30 CET
    assert wednesday["resolution"].due_at == utc(2026, 3, 18, 12)  # Wed 13:00 CET

    early = history(PARIS, "2026-03-16 07:00", ("2026-03-16 09:10", "status", "in_progress"), priority=2)
    first = clocks(rules(), PARIS, "2026-03-16 12:00", early)["first_response"]
    assert (first.state, first.used, first.stopped_at) == ("met", 10 * MINUTE, utc(2026, 3, 16, 8, 10))


@pytest.mark.parametrize(
    ("zone", "calendar", "opened", "holiday_noon", "before", "due", "due_without_holidays"),
    [
        # Thu 16:00-17:00 (1 h); Fri 1 May (Labour Day) closed; Mon 09:00-12:00 CEST
        pytest.param(PARIS, "paris", "2026-04-30 16:00", "2026-05-01 12:00", 1, utc(2026, 5, 4, 10),
                     utc(2026, 5, 1, 10), id="paris-labour-day"),
        # Fri 15:00-17:00 (2 h); Easter Monday closed; Tue 09:00-11:00 CEST
        pytest.param(PARIS, "paris", "2026-04-03 15:00", "2026-04-06 12:00", 2, utc(2026, 4, 7, 9),
                     utc(2026, 4, 6, 9), id="paris-easter-monday"),
        # Mon 15:00-17:00; Tue 14 July closed; Wed 09:00-11:00 CEST
        pytest.param(PARIS, "paris", "2026-07-13 15:00", "2026-07-14 12:00", 2, utc(2026, 7, 15, 9),
                     utc(2026, 7, 14, 9), id="paris-14-july"),
        # Thu 15:00-17:00 EDT; Fri 3 July (Independence Day observed) closed; Mon 09:00-11:00 EDT
        pytest.param(NEW_YORK, "new-york", "2026-07-02 15:00", "2026-07-03 12:00", 2, utc(2026, 7, 6, 15),
                     utc(2026, 7, 3, 15), id="new-york-independence-day-observed"),
        # Wed 16:00-17:00 EST; Thanksgiving closed; Fri 09:00-12:00 EST
        pytest.param(NEW_YORK, "new-york", "2026-11-25 16:00", "2026-11-26 12:00", 1, utc(2026, 11, 27, 17),
                     utc(2026, 11, 26, 17), id="new-york-thanksgiving"),
    ],
)  # fmt: skip
def test_holidays_do_not_count(zone, calendar, opened, holiday_noon, before, due, due_without_holidays):
    ticket = history(zone, opened, priority=1)
    sla = rules(policies=policies(calendar))
    on_the_holiday = clocks(sla, zone, holiday_noon, ticket)["resolution"]
    assert on_the_holiday.used == before * HOUR
    assert on_the_holiday.due_at == due
    no_holidays = compiled(**{calendar: {**CALENDARS[calendar], "holidays": []}})
    plain = clocks(rules(no_holidays, policies=policies(calendar)), zone, holiday_noon, ticket)["resolution"]
    assert plain.due_at == due_without_holidays


# ---- daylight saving time --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "calendar", "friday", "monday_11", "due"),
    [
        # clocks go forward on Sun 29 March: Fri 16:00 CET = 15:00 UTC; Mon 12:00 CEST = 10:00 UTC
        pytest.param(PARIS, "paris", "2026-03-27 16:00", "2026-03-30 11:00", utc(2026, 3, 30, 10), id="paris-spring"),
        # clocks go back on Sun 25 October: Fri 16:00 CEST = 14:00 UTC; Mon 12:00 CET = 11:00 UTC
        pytest.param(PARIS, "paris", "2026-10-23 16:00", "2026-10-26 11:00", utc(2026, 10, 26, 11), id="paris-fall"),
        # forward on Sun 8 March: Fri 16:00 EST = 21:00 UTC; Mon 12:00 EDT = 16:00 UTC
        pytest.param(NEW_YORK, "new-york", "2026-03-06 16:00", "2026-03-09 11:00", utc(2026, 3, 9, 16),
                     id="new-york-spring"),
        # back on Sun 1 November: Fri 16:00 EDT = 20:00 UTC; Mon 12:00 EST = 17:00 UTC
        pytest.param(NEW_YORK, "new-york", "2026-10-30 16:00", "2026-11-02 11:00", utc(2026, 11, 2, 17),
                     id="new-york-fall"),
    ],
)  # fmt: skip
def test_business_hours_stay_local_across_a_clock_change(zone, calendar, friday, monday_11, due):
    ticket = history(zone, friday, priority=1)
    resolution = clocks(rules(policies=policies(calendar)), zone, monday_11, ticket)["resolution"]
    assert resolution.used == 3 * HOUR  # Fri 16:00-17:00 + Mon 09:00-11:00, local
    assert resolution.due_at == due  # 4 h: Mon 12:00 local, in the new offset


@pytest.mark.parametrize(
    ("zone", "calendar", "saturday_noon", "sunday_noon", "hours", "breached_at"),
    [
        # Sat 12:00 CET (11:00 UTC) to Sun 12:00 CEST (10:00 UTC): 23 h; 24 h reached Sun 13:00 CEST
        pytest.param(PARIS, "paris-all-day", "2026-03-28 12:00", "2026-03-29 12:00", 23, utc(2026, 3, 29, 11),
                     id="paris-spring"),
        # Sat 12:00 CEST (10:00 UTC) to Sun 12:00 CET (11:00 UTC): 25 h; 24 h reached Sun 11:00 CET
        pytest.param(PARIS, "paris-all-day", "2026-10-24 12:00", "2026-10-25 12:00", 25, utc(2026, 10, 25, 10),
                     id="paris-fall"),
        # Sat 12:00 EST (17:00 UTC) to Sun 12:00 EDT (16:00 UTC): 23 h; 24 h reached Sun 13:00 EDT
        pytest.param(NEW_YORK, "new-york-all-day", "2026-03-07 12:00", "2026-03-08 12:00", 23, utc(2026, 3, 8, 17),
                     id="new-york-spring"),
        # Sat 12:00 EDT (16:00 UTC) to Sun 12:00 EST (17:00 UTC): 25 h; 24 h reached Sun 11:00 EST
        pytest.param(NEW_YORK, "new-york-all-day", "2026-10-31 12:00", "2026-11-01 12:00", 25, utc(2026, 11, 1, 16),
                     id="new-york-fall"),
    ],
)  # fmt: skip
def test_a_round_the_clock_local_calendar_counts_real_time_over_a_clock_change(
    zone, calendar, saturday_noon, sunday_noon, hours, breached_at
):
    sla = rules(policies=[{"name": "round", "calendar": calendar, "targets": {"resolution": "1d"}}], olas=[])
    ticket = history(zone, saturday_noon)
    noon = clocks(sla, zone, sunday_noon, ticket)["resolution"]
    assert noon.used == hours * HOUR
    assert noon.state == ("running" if hours < 24 else "breached")
    assert noon.due_at == breached_at
    assert noon.breached_at == (breached_at if hours > 24 else None)
    evening = clocks(sla, zone, f"{sunday_noon[:10]} 20:00", ticket)["resolution"]
    assert (evening.state, evening.breached_at) == ("breached", breached_at)


@pytest.mark.parametrize(
    ("zone", "midnight", "first", "second", "four_am", "before"),
    [
        # Paris, 25 October: 02:00-03:00 happens twice, CEST then CET; midnight CEST = Sat 22:00 UTC, the first
        # 02:30 = 00:30 UTC (2.5 h later), the second 01:30 UTC, 04:00 CET = 03:00 UTC
        pytest.param(PARIS, "2026-10-25 00:00", "2026-10-25 02:30+02:00", "2026-10-25 02:30+01:00",
                     "2026-10-25 04:00", 2.5, id="paris"),
        # New York, 1 November: 01:00-02:00 happens twice, EDT then EST; midnight EDT = 04:00 UTC, the first
        # 01:30 = 05:30 UTC (1.5 h later), the second 06:30 UTC, 04:00 EST = 09:00 UTC
        pytest.param(NEW_YORK, "2026-11-01 00:00", "2026-11-01 01:30-04:00", "2026-11-01 01:30-05:00",
                     "2026-11-01 04:00", 1.5, id="new-york"),
    ],
)  # fmt: skip
def test_a_pause_within_the_repeated_hour_lasts_one_real_hour(zone, midnight, first, second, four_am, before):
    calendar = "paris-all-day" if zone is PARIS else "new-york-all-day"
    sla = rules(policies=[{"name": "round", "calendar": calendar, "targets": {"resolution": "1d"}}], olas=[])
    ticket = history(zone, midnight, (first, "status", "pending"), (second, "status", "in_progress"))
    resolution = clocks(sla, zone, four_am, ticket)["resolution"]
    # midnight to 04:00 on the wall clock is 5 real hours; the pause, 02:30 → 02:30 again, one of them
    assert resolution.used == 4 * HOUR
    assert [(p.status, (p.end - p.start).total_seconds(), p.counted) for p in resolution.pieces] == [
        ("new", before * HOUR, before * HOUR), ("pending", HOUR, 0.0), ("in_progress", (4 - before) * HOUR,
                                                                         (4 - before) * HOUR)
    ]  # fmt: skip


# ---- pauses, reopening, closing --------------------------------------------------------------------------------------

MONDAY = "2026-06-08"  # a week with no holiday in France; CEST (UTC+2)
TUESDAY = "2026-06-09"


def test_pending_pauses_the_clock_and_resuming_goes_on_from_what_it_had_used():
    events = [
        (f"{MONDAY} 09:15", "status", "assigned"),
        (f"{MONDAY} 09:15", "assignment_group", "service-desk"),
        (f"{MONDAY} 10:00", "status", "in_progress"),
        (f"{MONDAY} 11:00", "status", "pending"),
        (f"{TUESDAY} 10:00", "status", "in_progress"),
    ]
    sla = rules()
    paused = clocks(sla, PARIS, f"{MONDAY} 15:00", history(PARIS, f"{MONDAY} 09:00", *events[:4]))["resolution"]
    assert (paused.state, paused.used, paused.due_at, paused.breached_at) == ("paused", 2 * HOUR, None, None)

    resumed = clocks(sla, PARIS, f"{TUESDAY} 12:00", history(PARIS, f"{MONDAY} 09:00", *events))["resolution"]
    assert (resumed.state, resumed.used, resumed.target) == ("running", 4 * HOUR, 48 * HOUR)  # Mon 9-11, Tue 10-12
    # 44 h left from Tue 12:00: Tue 5 h, Wed-Fri 24 h, Mon 15 June 8 h, Tue 16 June 09:00-16:00 CEST
    assert resumed.due_at == utc(2026, 6, 16, 14)
    assert pieces(resumed) == [
        ("new", "p3", 15 * MINUTE, False),
        ("assigned", "p3", 45 * MINUTE, False),  # the group set at the same instant makes no extra piece
        ("in_progress", "p3", HOUR, False),
        ("pending", "p3", 0.0, True),
        ("in_progress", "p3", 2 * HOUR, False),
    ]


def test_a_clock_as_of_an_earlier_moment_ignores_what_happened_after_it():
    events = [(f"{MONDAY} 11:00", "status", "pending"), (f"{TUESDAY} 10:00", "status", "in_progress")]
    ticket = history(PARIS, f"{MONDAY} 09:00", *events)
    monday = clocks(rules(), PARIS, f"{MONDAY} 15:00", ticket, replied=f"{TUESDAY} 09:30")
    assert (monday["resolution"].state, monday["resolution"].used, monday["resolution"].due_at) == (
        "paused", 2 * HOUR, None
    )  # fmt: skip
    assert monday["first_response"].stopped_at == utc(2026, 6, 8, 9)  # the move to pending, not the later reply
    assert monday["first_response"].stopped_by == "status pending"


def test_pause_statuses_are_configurable():
    ticket = history(PARIS, f"{MONDAY} 09:00", (f"{MONDAY} 10:00", "status", "assigned"))
    assert clocks(rules(), PARIS, f"{MONDAY} 11:00", ticket)["resolution"].used == 2 * HOUR
    untriaged = rules(pause_statuses=["new", "pending"])  # counting starts once someone has the ticket
    resolution = clocks(untriaged, PARIS, f"{MONDAY} 11:00", ticket)["resolution"]
    assert resolution.used == HOUR and pieces(resolution)[0] == ("new", "p3", 0.0, True)


@pytest.mark.parametrize("reopened_to", ["in_progress", "assigned", "new"])  # GLPI reopens to new or assigned
def test_a_reopened_ticket_does_not_count_its_resolved_time_and_goes_on(reopened_to):
    events = [
        (f"{MONDAY} 09:30", "status", "in_progress"),
        (f"{MONDAY} 11:00", "status", "resolved"),
        (f"{TUESDAY} 10:00", "status", reopened_to),  # the requester says it is not fixed
        (f"{TUESDAY} 11:30", "status", "resolved"),
        ("2026-06-12 09:00", "status", "closed"),
    ]
    sla = rules()
    resolved = clocks(sla, PARIS, f"{MONDAY} 16:00", history(PARIS, f"{MONDAY} 09:00", *events[:2], priority=1))
    assert (resolved["resolution"].state, resolved["resolution"].used) == ("met", 2 * HOUR)
    assert resolved["resolution"].stopped_at == utc(2026, 6, 8, 9)  # Mon 11:00 CEST
    assert resolved["resolution"].due_at is None

    reopened = clocks(sla, PARIS, f"{TUESDAY} 11:00", history(PARIS, f"{MONDAY} 09:00", *events[:3], priority=1))
    clock = reopened["resolution"]
    assert (clock.state, clock.used, clock.stopped_at) == ("running", 3 * HOUR, None)  # Mon 9-11 + Tue 10-11
    assert clock.due_at == utc(2026, 6, 9, 10)  # 1 h left: Tue 12:00 CEST
    assert pieces(clock)[2] == ("resolved", "p1", 0.0, True)

    closed = clocks(sla, PARIS, "2026-07-01 12:00", history(PARIS, f"{MONDAY} 09:00", *events, priority=1))
    clock = closed["resolution"]
    assert (clock.state, clock.used, clock.due_at, clock.breached_at) == ("met", 3.5 * HOUR, None, None)
    assert clock.stopped_at == utc(2026, 6, 9, 9, 30)  # resolved Tue 11:30 CEST; closing later changes nothing
    assert clock.stopped_by == "status resolved"
    first = closed["first_response"]  # the move to in progress, 30 min after opening, is the first response
    assert (first.state, first.used, first.stopped_at) == ("met", 30 * MINUTE, utc(2026, 6, 8, 7, 30))


@pytest.mark.parametrize(
    ("priority", "state", "breached_at"),
    [(2, "met", None), (1, "breached", utc(2026, 6, 8, 11))],  # P1: 4 h reached Mon 13:00 CEST
)
def test_closed_tickets_are_met_or_breached(priority, state, breached_at):
    ticket = history(
        PARIS,
        f"{MONDAY} 09:00",
        (f"{MONDAY} 10:00", "status", "in_progress"),
        (f"{MONDAY} 15:00", "status", "resolved"),
        ("2026-06-11 09:00", "status", "closed"),
        priority=priority,
    )
    resolution = clocks(rules(), PARIS, "2026-09-01 12:00", ticket)["resolution"]
    assert (resolution.state, resolution.used, resolution.breached_at) == (state, 6 * HOUR, breached_at)
    assert resolution.stopped_at == utc(2026, 6, 8, 13) and resolution.due_at is None


def test_resolved_exactly_at_the_target_is_met():
    # a design choice: the target is met up to and including its last second; breached_at still says when it was
    # reached (the `explain` command prints it as "target reached at")
    ticket = history(PARIS, f"{MONDAY} 09:00", (f"{MONDAY} 13:00", "status", "resolved"), priority=1)
    resolution = clocks(rules(), PARIS, f"{MONDAY} 17:00", ticket)["resolution"]
    assert (resolution.state, resolution.used, resolution.breached_at) == ("met", 4 * HOUR, utc(2026, 6, 8, 11))
    late = history(PARIS, f"{MONDAY} 09:00", (f"{MONDAY} 13:00:01", "status", "resolved"), priority=1)
    assert clocks(rules(), PARIS, f"{MONDAY} 17:00", late)["resolution"].state == "breached"


def test_a_closed_ticket_is_frozen_whatever_the_trail_says_afterwards():
    ticket = history(
        PARIS,
        f"{MONDAY} 09:00",
        (f"{MONDAY} 10:00", "status", "resolved"),
        (f"{MONDAY} 11:00", "status", "closed"),
        (f"{TUESDAY} 09:00", "priority", 1),  # a late correction after closure
    )
    assert ticket[0]["priority"] == 1  # the row says P1 now
    resolution = clocks(rules(), PARIS, "2026-09-01 12:00", ticket)["resolution"]
    assert (resolution.policy, resolution.state, resolution.used) == ("p3", "met", HOUR)


def test_a_cancelled_ticket_stops_its_clocks_even_without_a_response():
    ticket = history(PARIS, f"{MONDAY} 09:00", (f"{MONDAY} 09:20", "status", "cancelled"), priority=2)
    got = clocks(rules(), PARIS, "2026-09-01 12:00", ticket)
    assert (got["resolution"].state, got["resolution"].used) == ("met", 20 * MINUTE)
    first = got["first_response"]  # never answered, but the clock stopped with the ticket: not breached months later
    assert (first.state, first.used, first.due_at) == ("met", 20 * MINUTE, None)
    assert first.stopped_at == utc(2026, 6, 8, 7, 20)
    assert (first.stopped_by, got["resolution"].stopped_by) == (
        "status cancelled without an answer",
        "status cancelled",
    )


# ---- the policy in force, recomputing --------------------------------------------------------------------------------


def test_a_raised_priority_keeps_the_time_used_and_takes_the_new_target():
    ticket = history(PARIS, f"{MONDAY} 09:00", (f"{MONDAY} 11:00", "priority", 1))
    got = clocks(rules(), PARIS, f"{MONDAY} 12:00", ticket)
    resolution = got["resolution"]
    assert (resolution.policy, resolution.target, resolution.used) == ("p1", 4 * HOUR, 3 * HOUR)
    assert resolution.state == "running" and resolution.due_at == utc(2026, 6, 8, 11)  # Mon 13:00 CEST
    assert pieces(resolution) == [("new", "p3", 2 * HOUR, False), ("new", "p1", HOUR, False)]
    # not answered yet: the first response target is P1's (30 min), reached at 09:30 already
    first = got["first_response"]
    assert (first.policy, first.state, first.breached_at) == ("p1", "breached", utc(2026, 6, 8, 7, 30))


def test_raised_after_the_new_target_has_passed_the_breach_is_where_that_target_was_reached():
    ticket = history(PARIS, f"{MONDAY} 09:00", (f"{MONDAY} 14:00", "priority", 1))
    resolution = clocks(rules(), PARIS, f"{MONDAY} 15:00", ticket)["resolution"]
    assert (resolution.state, resolution.used) == ("breached", 6 * HOUR)
    assert resolution.breached_at == resolution.due_at == utc(2026, 6, 8, 11)  # 4 h after 09:00: 13:00 CEST, as P3


def test_a_lowered_priority_takes_the_longer_target_and_is_no_longer_breached():
    # a design choice: the target is the policy in force now, also when it is looser
    ticket = history(PARIS, f"{MONDAY} 09:00", (f"{MONDAY} 14:00", "priority", 3), priority=1)
    resolution = clocks(rules(), PARIS, f"{MONDAY} 15:00", ticket)["resolution"]
    assert (resolution.policy, resolution.state, resolution.used, resolution.breached_at) == (
        "p3", "running", 6 * HOUR, None
    )  # fmt: skip


def test_each_piece_counts_in_the_calendar_of_the_policy_then_in_force():
    sla = rules(
        policies=[
            {"name": "p1-24x7", "when": {"field": "priority", "equals": 1}, "targets": {"resolution": "24h"}},
            {"name": "p3", "calendar": "paris", "targets": {"resolution": "2d"}},
        ]
    )
    ticket = history(PARIS, "2026-06-12 16:00", ("2026-06-12 18:00", "priority", 1))  # a Friday
    resolution = clocks(sla, PARIS, "2026-06-13 08:00", ticket)["resolution"]
    # Fri 16:00-18:00 as P3 in office hours: 1 h; Fri 18:00 → Sat 08:00 as P1 round the clock: 14 h
    assert pieces(resolution) == [("new", "p3", HOUR, False), ("new", "p1-24x7", 14 * HOUR, False)]
    assert (resolution.policy, resolution.calendar, resolution.used) == ("p1-24x7", "24x7", 15 * HOUR)
    assert resolution.due_at == utc(2026, 6, 13, 15)  # 9 h more, any hour: Sat 17:00 CEST


def test_time_before_any_policy_matched_counts_in_the_calendar_of_the_final_one():
    sla = rules(policies=policies()[:1], olas=[])  # only P1 has a policy
    ticket = history(PARIS, "2026-06-12 16:00", ("2026-06-15 10:00", "priority", 1))  # Fri, raised Mon 10:00
    resolution = clocks(sla, PARIS, "2026-06-15 11:00", ticket)["resolution"]
    assert pieces(resolution) == [("new", None, 2 * HOUR, False), ("new", "p1", HOUR, False)]  # Fri 1 h + Mon 1 h


def test_recomputing_after_a_calendar_or_target_change_gives_the_new_answer():
    ticket = history(
        PARIS,
        "2026-06-12 16:00",  # a Friday
        ("2026-06-12 16:10", "status", "in_progress"),
        ("2026-06-15 11:00", "status", "resolved"),
        ("2026-06-22 10:00", "status", "closed"),
        priority=1,
    )
    now = "2026-07-01 12:00"
    before = clocks(rules(), PARIS, now, ticket)["resolution"]
    assert (before.state, before.used) == ("met", 3 * HOUR)  # Fri 16-17 + Mon 9-11
    longer_days = compiled(paris={**CALENDARS["paris"], "hours": {"mon-fri": ["08:00-18:00"]}})
    after = clocks(rules(longer_days), PARIS, now, ticket)["resolution"]
    assert (after.state, after.used) == ("breached", 5 * HOUR)  # Fri 16-18 + Mon 8-11
    assert after.breached_at == utc(2026, 6, 15, 8)  # Fri 2 h + Mon 08:00-10:00 CEST
    tighter = clocks(rules(policies=policies(p1="150m")), PARIS, now, ticket)["resolution"]
    assert (tighter.state, tighter.target) == ("breached", 2.5 * HOUR)
    assert tighter.breached_at == utc(2026, 6, 15, 8, 30)  # Fri 1 h + Mon 09:00-10:30 CEST
    assert before.stopped_at == after.stopped_at == tighter.stopped_at == utc(2026, 6, 15, 9)


# ---- first response --------------------------------------------------------------------------------------------------


def test_first_response_by_a_reply():
    ticket = history(PARIS, f"{MONDAY} 09:00", priority=2)  # P2: first response within 1 h
    first = clocks(rules(), PARIS, f"{MONDAY} 12:00", ticket, replied=f"{MONDAY} 09:40")["first_response"]
    assert (first.state, first.used, first.stopped_at) == ("met", 40 * MINUTE, utc(2026, 6, 8, 7, 40))
    assert first.due_at is None and first.breached_at is None
    late = clocks(rules(), PARIS, f"{MONDAY} 12:00", ticket, replied=f"{MONDAY} 10:15")["first_response"]
    assert (late.state, late.used, late.breached_at) == ("breached", 75 * MINUTE, utc(2026, 6, 8, 8))


def test_first_response_by_a_status_move_and_the_earlier_of_the_two_wins():
    assigned, started = (f"{MONDAY} 09:05", "status", "assigned"), (f"{MONDAY} 10:30", "status", "in_progress")
    moved = history(PARIS, f"{MONDAY} 09:00", assigned, started, priority=2)
    waiting = clocks(rules(), PARIS, f"{MONDAY} 09:30", history(PARIS, f"{MONDAY} 09:00", assigned, priority=2))
    assert waiting["first_response"].state == "running"  # being assigned is no response
    assert waiting["first_response"].due_at == utc(2026, 6, 8, 8)  # 10:00 CEST
    first = clocks(rules(), PARIS, f"{MONDAY} 12:00", moved)["first_response"]
    assert (first.state, first.used, first.stopped_at) == ("breached", 90 * MINUTE, utc(2026, 6, 8, 8, 30))
    assert first.breached_at == utc(2026, 6, 8, 8)
    both = clocks(rules(), PARIS, f"{MONDAY} 12:00", moved, replied=f"{MONDAY} 09:50")["first_response"]
    assert (both.state, both.used, both.stopped_at) == ("met", 50 * MINUTE, utc(2026, 6, 8, 7, 50))
    assert (both.stopped_by, first.stopped_by) == ("the desk's first public reply", "status in_progress")
    pending = history(PARIS, f"{MONDAY} 09:00", (f"{MONDAY} 09:20", "status", "pending"), priority=2)
    assert clocks(rules(), PARIS, f"{MONDAY} 12:00", pending)["first_response"].used == 20 * MINUTE


def test_a_met_first_response_keeps_the_target_of_its_time_when_the_priority_is_raised_later():
    ticket = history(
        PARIS, f"{MONDAY} 09:00", (f"{MONDAY} 10:00", "status", "in_progress"), (f"{MONDAY} 11:00", "priority", 1)
    )
    got = clocks(rules(), PARIS, f"{MONDAY} 12:00", ticket)
    assert (got["first_response"].policy, got["first_response"].state) == ("p3", "met")  # 1 h of 4 h
    assert got["resolution"].policy == "p1"


def test_a_reply_stamped_before_the_ticket_was_opened_is_an_immediate_response():
    ticket = history(PARIS, f"{MONDAY} 09:00", priority=2)  # e.g. clocks of two systems a little apart
    first = clocks(rules(), PARIS, f"{MONDAY} 12:00", ticket, replied=f"{MONDAY} 08:59")["first_response"]
    assert (first.state, first.used, first.policy) == ("met", 0.0, "p2")


# ---- OLA: time with one group ----------------------------------------------------------------------------------------


def test_ola_time_accumulates_each_time_the_ticket_is_with_the_group():
    events = [
        (f"{MONDAY} 09:30", "assignment_group", "network"),
        (f"{MONDAY} 10:00", "status", "in_progress"),
        (f"{MONDAY} 11:00", "assignment_group", "service-desk"),
        (f"{MONDAY} 14:00", "assignment_group", "network"),
        (f"{MONDAY} 16:00", "assignment_group", "service-desk"),
        (f"{TUESDAY} 10:00", "status", "pending"),
    ]
    opened = f"{MONDAY} 09:00"
    sla = rules()
    back = clocks(sla, PARIS, f"{MONDAY} 15:30", history(PARIS, opened, *events[:4], assignment_group="service-desk"))
    ola = back["ola:network"]
    assert (ola.policy, ola.calendar, ola.target) == ("network-ola", "paris", 4 * HOUR)
    assert (ola.state, ola.used, ola.started_at) == ("running", 3 * HOUR, utc(2026, 6, 8, 7, 30))  # 1.5 h + 1.5 h
    assert ola.due_at == utc(2026, 6, 8, 14, 30)  # 1 h more: 16:30 CEST
    assert pieces(ola) == [
        ("new", "network-ola", 30 * MINUTE, False),
        ("in_progress", "network-ola", HOUR, False),
        ("in_progress", "network-ola", 90 * MINUTE, False),
    ]
    away = clocks(sla, PARIS, f"{TUESDAY} 12:00", history(PARIS, opened, *events, assignment_group="service-desk"))
    ola = away["ola:network"]
    assert (ola.state, ola.used, ola.due_at) == ("met", 3.5 * HOUR, None)
    assert ola.stopped_at == utc(2026, 6, 8, 14)  # handed back to the service desk Mon 16:00 CEST
    assert ola.stopped_by == "handed to service-desk"
    assert away["resolution"].used == 9 * HOUR  # the resolution clock ran all along: Mon 8 h + Tue 09:00-10:00


def test_ola_pauses_with_the_ticket_and_records_its_breach():
    events = [
        (f"{MONDAY} 09:00", "assignment_group", "network"),
        (f"{MONDAY} 10:00", "status", "pending"),
        (f"{MONDAY} 13:00", "status", "in_progress"),
    ]
    sla = rules()
    paused = clocks(sla, PARIS, f"{MONDAY} 12:00", history(PARIS, f"{MONDAY} 08:00", *events[:2]))["ola:network"]
    assert (paused.state, paused.used, paused.due_at) == ("paused", HOUR, None)
    late = clocks(sla, PARIS, f"{MONDAY} 17:00", history(PARIS, f"{MONDAY} 08:00", *events))["ola:network"]
    assert (late.state, late.used) == ("breached", 5 * HOUR)  # 09-10 + 13-17
    assert late.breached_at == late.due_at == utc(2026, 6, 8, 14)  # 1 h + 3 h: 16:00 CEST


def test_no_ola_clock_for_a_ticket_never_with_the_group():
    ticket = history(PARIS, f"{MONDAY} 09:00", assignment_group="service-desk")
    assert "ola:network" not in clocks(rules(), PARIS, f"{MONDAY} 12:00", ticket)


def test_an_ola_stops_when_the_ticket_is_resolved_with_the_group():
    ticket = history(
        PARIS,
        f"{MONDAY} 09:00",
        (f"{MONDAY} 12:00", "status", "resolved"),
        (f"{TUESDAY} 09:00", "status", "closed"),
        assignment_group="network",
    )
    ola = clocks(rules(), PARIS, "2026-09-01 12:00", ticket)["ola:network"]
    assert (ola.state, ola.used, ola.stopped_at) == ("met", 3 * HOUR, utc(2026, 6, 8, 10))


# ---- due and breach times --------------------------------------------------------------------------------------------


def test_breached_at_is_exactly_where_the_target_is_reached():
    sla = rules(policies=policies("paris-lunch"), olas=[])
    ticket = history(PARIS, f"{MONDAY} 11:00", priority=1)
    # 4 h: 11:00-12:30 (1.5 h), lunch, 13:30-16:00 (2.5 h) → 16:00 CEST = 14:00 UTC
    running = clocks(sla, PARIS, f"{MONDAY} 14:00", ticket)["resolution"]  # 1.5 h + 13:30-14:00
    assert (running.used, running.due_at, running.breached_at) == (2 * HOUR, utc(2026, 6, 8, 14), None)
    lunch = clocks(sla, PARIS, f"{MONDAY} 13:00", ticket)["resolution"]
    assert (lunch.used, lunch.due_at) == (1.5 * HOUR, utc(2026, 6, 8, 14))  # the lunch hour does not move it
    exactly = clocks(sla, PARIS, f"{MONDAY} 16:00", ticket)["resolution"]
    # reaching the target is not yet over it: still running (a choice: a ticket resolved at that instant is met)
    assert (exactly.state, exactly.used, exactly.breached_at) == ("running", 4 * HOUR, utc(2026, 6, 8, 14))
    over = clocks(sla, PARIS, f"{MONDAY} 16:00:01", ticket)["resolution"]
    assert (over.state, over.used) == ("breached", 4 * HOUR + 1)
    assert over.breached_at == over.due_at == utc(2026, 6, 8, 14)
    next_day = clocks(sla, PARIS, f"{TUESDAY} 10:00", ticket)["resolution"]
    assert (next_day.used, next_day.breached_at, next_day.percent) == (6 * HOUR, utc(2026, 6, 8, 14), 150.0)


def test_a_breached_clock_that_is_paused_shows_paused_and_keeps_its_breach_time():
    # a design choice: the state says whether it counts; the breach stays in breached_at
    ticket = history(PARIS, f"{MONDAY} 09:00", (f"{MONDAY} 14:00", "status", "pending"), priority=1)
    resolution = clocks(rules(), PARIS, f"{TUESDAY} 12:00", ticket)["resolution"]
    assert (resolution.state, resolution.used, resolution.due_at) == ("paused", 5 * HOUR, None)
    assert resolution.breached_at == utc(2026, 6, 8, 11)


def test_a_ticket_that_came_in_already_closed_has_no_clock():
    """Imported history (a GLPI ticket closed before the hub knew it): its life before is unknown, so no clock says
    it was met in no time."""
    ticket = history(PARIS, "2026-03-02 10:00", status="closed")
    assert clocks(rules(), PARIS, "2026-03-05 10:00", ticket) == {}
    reopened = history(PARIS, "2026-03-02 10:00", ("2026-03-03 10:00", "status", "in_progress"), status="resolved")
    assert clocks(rules(), PARIS, "2026-03-05 10:00", reopened) == {}


# ---- next update -----------------------------------------------------------------------------------------------------

UPDATES = [{"name": "updates", "calendar": "paris", "targets": {"next_update": "2h"}}]


def next_update(now: str, ticket, updates: list[str] = ()) -> Clock:
    sla = rules(policies=UPDATES, olas=[])
    row, changes = ticket
    found = sla.compute(row, changes, at(PARIS, now), None, [at(PARIS, u) for u in updates])
    (clock,) = [c for c in found if c.metric == "next_update"]
    return clock


def test_next_update_counts_the_silence_since_the_last_update():
    # Monday 2026-03-02, Paris 09:00-17:00. Opened 09:00, a reply at 10:30, now 11:30: 1 h of silence.
    clock = next_update("2026-03-02 11:30", history(PARIS, "2026-03-02 09:00"), ["2026-03-02 10:30"])
    assert (clock.state, clock.used, clock.breached_at) == ("running", 1 * HOUR, None)
    assert clock.due_at == at(PARIS, "2026-03-02 12:30")


def test_a_status_change_is_an_update_and_silence_over_the_target_is_a_breach():
    ticket = history(PARIS, "2026-03-02 09:00", ("2026-03-02 10:00", "status", "in_progress"))
    # 10:00 → 13:00 without a word: the 2 h were up at 12:00; the breach stays even after a later reply
    clock = next_update("2026-03-02 13:30", ticket, ["2026-03-02 13:00"])
    assert clock.breached_at == at(PARIS, "2026-03-02 12:00")
    assert (clock.state, clock.used) == ("breached", 0.5 * HOUR)


def test_silence_outside_business_hours_and_while_pending_does_not_count():
    ticket = history(
        PARIS,
        "2026-03-06 16:00",  # a Friday
        ("2026-03-09 10:00", "status", "pending"),  # Monday: 1 h on Friday + 1 h on Monday of silence
        ("2026-03-09 15:00", "status", "in_progress"),  # an update too: the silence starts again at 15:00
    )
    clock = next_update("2026-03-09 16:00", ticket)
    assert (clock.state, clock.used, clock.breached_at) == ("running", 1 * HOUR, None)
    paused = next_update("2026-03-09 12:00", ticket)
    assert (paused.state, paused.due_at) == ("paused", None)


def test_next_update_stops_with_the_ticket():
    ticket = history(PARIS, "2026-03-02 09:00", ("2026-03-02 10:00", "status", "resolved"))
    clock = next_update("2026-03-03 12:00", ticket)
    assert (clock.state, clock.stopped_at, clock.due_at) == ("met", at(PARIS, "2026-03-02 10:00"), None)
