"""Cron expressions: the guide's examples, time zones, DST changes, fugit's extensions, errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from rjbatch import cron
from rjbatch.cron import InvalidCron


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# A Thursday. Rows of the guide's table start here unless they need another start.
AFTER = utc(2024, 3, 14, 10, 17, 30)

# The programmer's guide, "`cron_schedule` Examples": every row, with its next times.
GUIDE_EXAMPLES = [
    ("Every minute", "* * * * *", AFTER, [utc(2024, 3, 14, 10, 18), utc(2024, 3, 14, 10, 19)]),
    (
        "Every 10 minutes",
        "*/10 * * * *",
        AFTER,
        [utc(2024, 3, 14, 10, 20), utc(2024, 3, 14, 10, 30), utc(2024, 3, 14, 10, 40)],
    ),
    ("Every hour on the hour", "0 * * * *", AFTER, [utc(2024, 3, 14, 11), utc(2024, 3, 14, 12)]),
    ("Every day at 2am", "0 2 * * *", AFTER, [utc(2024, 3, 15, 2), utc(2024, 3, 16, 2)]),
    (
        "5am and 5pm daily",
        "0 5,17 * * *",
        AFTER,
        [utc(2024, 3, 14, 17), utc(2024, 3, 15, 5), utc(2024, 3, 15, 17)],
    ),
    (
        # As written, this is every minute of hours 0, 4, 8, 12, 16 and 20.
        "Every 4 hours",
        "* */4 * * *",
        utc(2024, 3, 14, 12, 58, 30),
        [utc(2024, 3, 14, 12, 59), utc(2024, 3, 14, 16, 0), utc(2024, 3, 14, 16, 1)],
    ),
    (
        "Every Month",
        "0 0 1 * *",
        AFTER,
        [utc(2024, 4, 1), utc(2024, 5, 1), utc(2024, 6, 1)],
    ),
    (
        "On the 5th and the 6th of every month",
        "0 0 5,6 * *",
        AFTER,
        [utc(2024, 4, 5), utc(2024, 4, 6), utc(2024, 5, 5)],
    ),
    (
        "Last day of the month",
        "0 12 L * *",
        AFTER,
        [utc(2024, 3, 31, 12), utc(2024, 4, 30, 12), utc(2024, 5, 31, 12)],
    ),
    (
        "5 days before the end of the month",  # days-in-month + 1 - 5
        "0 0 -5 * *",
        AFTER,
        [utc(2024, 3, 27), utc(2024, 4, 26), utc(2024, 5, 27)],
    ),
    (
        "Every January",
        "0 0 * Jan *",
        AFTER,
        [utc(2025, 1, 1), utc(2025, 1, 2), utc(2025, 1, 3)],
    ),
    (
        "Every January, May and August",
        "0 0 * Jan,May,Aug *",
        utc(2024, 5, 30, 10),
        [utc(2024, 5, 31), utc(2024, 8, 1), utc(2024, 8, 2)],
    ),
    (
        "Quarterly",
        "0 0 1 */3 *",
        AFTER,
        [utc(2024, 4, 1), utc(2024, 7, 1), utc(2024, 10, 1), utc(2025, 1, 1)],
    ),
    ("Annually", "0 0 1 1 *", AFTER, [utc(2025, 1, 1), utc(2026, 1, 1)]),
    (
        "Every Sunday and Friday at 5pm",
        "0 17 * * Sun,Fri",
        AFTER,
        [utc(2024, 3, 15, 17), utc(2024, 3, 17, 17), utc(2024, 3, 22, 17)],
    ),
    (
        "First Monday of every month",
        "0 12 * * Mon#1",
        AFTER,
        [utc(2024, 4, 1, 12), utc(2024, 5, 6, 12), utc(2024, 6, 3, 12)],
    ),
    (
        "Third Monday of every month",
        "0 12 * * Mon#3",
        AFTER,
        [utc(2024, 3, 18, 12), utc(2024, 4, 15, 12), utc(2024, 5, 20, 12)],
    ),
    (
        "Last Sunday of every month",
        "0 12 * * Sun#-1",
        AFTER,
        [utc(2024, 3, 31, 12), utc(2024, 4, 28, 12), utc(2024, 5, 26, 12)],
    ),
    (
        "Every Sunday at 5pm",
        "0 17 * * Sun",
        AFTER,
        [utc(2024, 3, 17, 17), utc(2024, 3, 24, 17), utc(2024, 3, 31, 17)],
    ),
    (
        "Fri, Sat & Sun at 3:30pm",
        "30 15 * * Fri,Sat,Sun",
        AFTER,
        [
            utc(2024, 3, 15, 15, 30),
            utc(2024, 3, 16, 15, 30),
            utc(2024, 3, 17, 15, 30),
            utc(2024, 3, 22, 15, 30),
        ],
    ),
    (
        "4am and 5pm on Sunday and Monday only",
        "0 4,17 * * Sun,Mon",
        AFTER,
        [
            utc(2024, 3, 17, 4),
            utc(2024, 3, 17, 17),
            utc(2024, 3, 18, 4),
            utc(2024, 3, 18, 17),
            utc(2024, 3, 24, 4),
        ],
    ),
    (
        "Every night from the 5th to the 12th",
        "30 0 5-12 * *",
        utc(2024, 3, 11, 10),
        [utc(2024, 3, 12, 0, 30), utc(2024, 4, 5, 0, 30), utc(2024, 4, 6, 0, 30)],
    ),
    (
        "10 days before the end of the month to 5 days before the end of the month",
        "0 0 -10--5 * *",
        AFTER,
        [utc(2024, 3, day) for day in range(22, 28)] + [utc(2024, 4, 21)],
    ),
    (
        "Every second day, 10 days before the end of the month to 5 days before the end",
        "0 0 -10--2/2 * *",
        AFTER,
        [utc(2024, 3, day) for day in (22, 24, 26, 28, 30)] + [utc(2024, 4, 21), utc(2024, 4, 23)],
    ),
]


@pytest.mark.parametrize(
    "expr, after, expected",
    [row[1:] for row in GUIDE_EXAMPLES],
    ids=[row[0] for row in GUIDE_EXAMPLES],
)
def test_every_guide_example_gives_its_next_times(expr, after, expected):
    assert cron.next_times(expr, after, len(expected)) == expected
    # and walking back from the last one gives the same times
    back = [expected[-1]]
    for _ in expected[1:]:
        back.append(cron.previous_time(expr, back[-1]))
    assert back[::-1] == expected


# -- time zones --------------------------------------------------------------------


def test_guide_time_zone_example_runs_at_1am_new_york_time():
    after = utc(2015, 12, 9, 17, 50, 5)
    assert cron.next_time("0 1 * * * America/New_York", after) == utc(2015, 12, 10, 6, 0)


def test_results_are_aware_utc_and_naive_inputs_are_utc():
    result = cron.next_time("0 1 * * * America/New_York", datetime(2015, 12, 9, 17, 50, 5))
    assert result == utc(2015, 12, 10, 6) and result.tzinfo is UTC
    tokyo = datetime(2015, 12, 10, 2, 50, 5, tzinfo=ZoneInfo("Asia/Tokyo"))  # 17:50:05 UTC
    assert cron.next_time("0 1 * * * America/New_York", tokyo).tzinfo is UTC
    assert cron.next_time("0 1 * * * America/New_York", tokyo) == utc(2015, 12, 10, 6)


def test_without_a_zone_times_are_utc_whatever_the_servers_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert cron.next_time("0 1 * * *", AFTER) == utc(2024, 3, 15, 1)
        assert cron.next_time("0 1 * * * UTC", AFTER) == utc(2024, 3, 15, 1)
        assert cron.next_time("0 1 * * * Etc/UTC", AFTER) == utc(2024, 3, 15, 1)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_fixed_offset_zone_is_accepted():
    assert cron.next_time("0 9 * * * +09:00", AFTER) == utc(2024, 3, 15, 0)
    assert cron.next_time("0 9 * * * -0530", AFTER) == utc(2024, 3, 14, 14, 30)


def test_a_special_can_take_a_zone():
    assert cron.next_time("@daily America/New_York", AFTER) == utc(2024, 3, 15, 4)  # EDT


# -- daylight-saving changes --------------------------------------------------------

# New York: 2024-03-10 02:00 EST -> 03:00 EDT, 2024-11-03 02:00 EDT -> 01:00 EST.
# London:   2024-03-31 01:00 GMT -> 02:00 BST, 2024-10-27 02:00 BST -> 01:00 GMT.
DST_CASES = [
    # spring forward: a skipped wall-clock time fires when the gap ends
    ("New York, 02:30 is skipped", "30 2 * * * America/New_York", utc(2024, 3, 9, 12),
     [utc(2024, 3, 10, 7, 0), utc(2024, 3, 11, 6, 30)]),
    ("New York, 01:30 before the gap", "30 1 * * * America/New_York", utc(2024, 3, 9, 12),
     [utc(2024, 3, 10, 6, 30), utc(2024, 3, 11, 5, 30)]),
    ("New York, hourly follows real time in spring", "0 * * * * America/New_York",
     utc(2024, 3, 10, 5, 30), [utc(2024, 3, 10, 6), utc(2024, 3, 10, 7), utc(2024, 3, 10, 8)]),
    ("London, 01:30 is skipped", "30 1 * * * Europe/London", utc(2024, 3, 30, 12),
     [utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30)]),
    ("London, 02:30 after the gap", "30 2 * * * Europe/London", utc(2024, 3, 30, 12),
     [utc(2024, 3, 31, 1, 30), utc(2024, 4, 1, 1, 30)]),
    ("London, hourly follows real time in spring", "0 * * * * Europe/London",
     utc(2024, 3, 30, 23, 30), [utc(2024, 3, 31, 0), utc(2024, 3, 31, 1), utc(2024, 3, 31, 2)]),
    # fall back: a repeated wall-clock time fires at its first occurrence only
    ("New York, 01:30 happens twice", "30 1 * * * America/New_York", utc(2024, 11, 2, 12),
     [utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)]),
    ("New York, 02:30 once", "30 2 * * * America/New_York", utc(2024, 11, 2, 12),
     [utc(2024, 11, 3, 7, 30), utc(2024, 11, 4, 7, 30)]),
    ("New York, hourly follows real time in autumn", "0 * * * * America/New_York",
     utc(2024, 11, 3, 4, 30), [utc(2024, 11, 3, 5), utc(2024, 11, 3, 6), utc(2024, 11, 3, 7)]),
    ("London, 01:30 happens twice", "30 1 * * * Europe/London", utc(2024, 10, 26, 12),
     [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]),
    ("London, 02:30 once", "30 2 * * * Europe/London", utc(2024, 10, 26, 12),
     [utc(2024, 10, 27, 2, 30), utc(2024, 10, 28, 2, 30)]),
    ("London, hourly follows real time in autumn", "0 * * * * Europe/London",
     utc(2024, 10, 26, 23, 30), [utc(2024, 10, 27, 0), utc(2024, 10, 27, 1), utc(2024, 10, 27, 2)]),
]  # fmt: skip


@pytest.mark.parametrize(
    "expr, after, expected", [case[1:] for case in DST_CASES], ids=[case[0] for case in DST_CASES]
)
def test_dst_changes_follow_cron(expr, after, expected):
    assert cron.next_times(expr, after, len(expected)) == expected
    for earlier, later in pairwise(expected):
        assert cron.previous_time(expr, later) == earlier


def test_a_fixed_time_asked_from_inside_the_repeated_hour_is_not_repeated():
    expr = "30 1 * * * America/New_York"
    assert cron.next_time(expr, utc(2024, 11, 3, 5, 45)) == utc(2024, 11, 4, 6, 30)  # 01:45 EDT
    assert cron.next_time(expr, utc(2024, 11, 3, 6, 10)) == utc(2024, 11, 4, 6, 30)  # 01:10 EST
    assert cron.previous_time(expr, utc(2024, 11, 3, 6, 45)) == utc(2024, 11, 3, 5, 30)


def test_a_wildcard_hour_runs_through_both_passes_of_the_repeated_hour():
    expr = "*/20 * * * * America/New_York"
    assert cron.next_times(expr, utc(2024, 11, 3, 5, 30), 4) == [
        utc(2024, 11, 3, 5, 40),  # 01:40 EDT
        utc(2024, 11, 3, 6, 0),  # 01:00 EST
        utc(2024, 11, 3, 6, 20),
        utc(2024, 11, 3, 6, 40),
    ]
    assert cron.previous_time(expr, utc(2024, 11, 3, 6, 0)) == utc(2024, 11, 3, 5, 40)


def test_a_skipped_time_fires_once_at_the_end_of_the_gap_even_if_several_are_skipped():
    expr = "0,15,30,45 2 * * * America/New_York"
    assert cron.next_times(expr, utc(2024, 3, 10, 6, 50), 2) == [
        utc(2024, 3, 10, 7, 0),  # 03:00 EDT, standing for 02:00 to 02:45
        utc(2024, 3, 11, 6, 0),  # 02:00 EDT the next day
    ]
    assert cron.previous_time(expr, utc(2024, 3, 10, 7, 0)) == utc(2024, 3, 9, 7, 45)


def _brute_force(expr: str, wall_matches, start: datetime, end: datetime) -> list[datetime]:
    """The rules of docs/cron.md applied minute by minute, to check the fast search."""
    schedule = cron.parse(expr)
    fired = []
    moment = start
    while moment < end:
        local = moment.astimezone(schedule.zone)
        earlier = (moment - timedelta(seconds=1)).astimezone(schedule.zone)
        wall = local.replace(tzinfo=None)
        if schedule.follows_real_time:
            fires = wall_matches(wall)
        else:
            fires = wall_matches(wall) and local.fold == 0
            if local.utcoffset() > earlier.utcoffset():  # the first instant after a gap
                gap = earlier.replace(tzinfo=None) + timedelta(minutes=1)
                while gap < wall and not fires:
                    fires = wall_matches(gap)
                    gap += timedelta(minutes=1)
        if fires:
            fired.append(moment)
        moment += timedelta(minutes=1)
    return fired


@pytest.mark.parametrize(
    "zone",
    [
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "America/Santiago",
        "Europe/Dublin",
    ],
)
@pytest.mark.parametrize(
    "fields, wall_matches",
    [
        ("*/20 * * * *", lambda w: w.minute % 20 == 0),
        ("15,45 1-3 * * *", lambda w: w.minute in (15, 45) and 1 <= w.hour <= 3),
        ("* 2 * * *", lambda w: w.hour == 2),
        ("0 */2 * * *", lambda w: w.minute == 0 and w.hour % 2 == 0),
    ],
    ids=["every-20-min", "fixed-hours", "every-minute-of-2am", "every-2-hours"],
)
def test_dst_days_match_a_minute_by_minute_reading_of_the_rules(zone, fields, wall_matches):
    expr = f"{fields} {zone}"
    tz = ZoneInfo(zone)
    year_start = utc(2024, 1, 1)
    changes = [
        year_start + timedelta(hours=h)
        for h in range(1, 366 * 24)
        if (year_start + timedelta(hours=h)).astimezone(tz).utcoffset()
        != (year_start + timedelta(hours=h - 1)).astimezone(tz).utcoffset()
    ]
    assert len(changes) == 2
    for change in changes:
        start, end = change - timedelta(hours=4), change + timedelta(hours=4)
        expected = _brute_force(expr, wall_matches, start, end)
        found, moment = [], start - timedelta(seconds=1)
        while (moment := cron.next_time(expr, moment)) < end:
            found.append(moment)
        assert found == expected
        backwards, moment = [], end
        while (moment := cron.previous_time(expr, moment)) >= start:
            backwards.append(moment)
        assert backwards[::-1] == expected


# -- calendar details -----------------------------------------------------------------


def test_february_29_comes_only_in_leap_years():
    assert cron.next_times("0 0 29 2 *", utc(2024, 3, 1), 2) == [utc(2028, 2, 29), utc(2032, 2, 29)]
    assert cron.next_time("0 0 29 2 *", utc(2096, 3, 1)) == utc(2104, 2, 29)  # 2100 is no leap year
    assert cron.previous_time("0 0 29 2 *", utc(2028, 2, 29)) == utc(2024, 2, 29)


def test_l_and_minus_one_are_the_last_day_of_each_month():
    for expr in ("0 12 L 2 *", "0 12 -1 2 *", "0 12 last 2 *"):
        assert cron.next_times(expr, utc(2023, 1, 1), 2) == [
            utc(2023, 2, 28, 12),
            utc(2024, 2, 29, 12),
        ]


def test_negative_days_count_back_from_each_months_end():
    assert cron.next_times("0 0 -5 * *", utc(2024, 1, 31), 3) == [
        utc(2024, 2, 25),  # 29 + 1 - 5
        utc(2024, 3, 27),
        utc(2024, 4, 26),
    ]
    assert cron.next_times("0 0 -7-L * *", utc(2024, 4, 1), 2) == [
        utc(2024, 4, 24),
        utc(2024, 4, 25),
    ]
    # from the 28th to 2 days before the end: only a 29-day February has such a day
    assert cron.next_times("0 0 28--2 2 *", utc(2023, 1, 1), 2) == [
        utc(2024, 2, 28),
        utc(2028, 2, 28),
    ]


def test_nth_and_last_weekday_of_the_month():
    assert cron.next_times("0 0 * * mon#5", AFTER, 2) == [utc(2024, 4, 29), utc(2024, 7, 29)]
    assert cron.next_time("0 0 * * sun#-2", AFTER) == utc(2024, 3, 24)
    assert cron.next_time("0 0 * * sun#L", AFTER) == utc(2024, 3, 31)
    assert cron.next_time("0 0 * 2 mon#5", utc(2020, 1, 1)) == utc(2044, 2, 29)


def test_every_other_week_counts_weeks_from_2019_01_01():
    # fugit's `tue%2`: weeks numbered from Tuesday 2019-01-01 (week 1)
    assert cron.next_times("0 0 * * tue%2", utc(2019, 1, 1), 2) == [
        utc(2019, 1, 8),
        utc(2019, 1, 22),
    ]
    assert cron.next_time("0 0 * * tue%2+1", utc(2018, 12, 31)) == utc(2019, 1, 1)


def test_day_of_month_or_day_of_week_when_both_are_restricted():
    assert cron.next_times("0 0 13 * fri", AFTER, 6) == [
        utc(2024, 3, 15),
        utc(2024, 3, 22),
        utc(2024, 3, 29),
        utc(2024, 4, 5),
        utc(2024, 4, 12),
        utc(2024, 4, 13),  # a Saturday, but the 13th
    ]


def test_an_ampersand_asks_for_both_day_fields():
    assert cron.next_times("0 0 13 * fri&", AFTER, 2) == [utc(2024, 9, 13), utc(2024, 12, 13)]
    assert cron.next_time("0 0 1-7& * mon", AFTER) == utc(2024, 4, 1)


# -- syntax -----------------------------------------------------------------------------


def test_names_are_case_insensitive_and_may_form_lists_and_ranges():
    assert cron.next_times("0 0 * * MON-fri", AFTER, 3) == [
        utc(2024, 3, 15),
        utc(2024, 3, 18),
        utc(2024, 3, 19),
    ]
    assert cron.next_time("0 0 1 jan-MAR *", AFTER) == utc(2025, 1, 1)
    assert cron.next_time("0 0 1 Apr,jun *", AFTER) == utc(2024, 4, 1)


def test_sunday_is_0_or_7_and_weekday_ranges_may_wrap():
    for dow in ("0", "7", "sun", "0,7"):
        assert cron.next_time(f"0 0 * * {dow}", AFTER) == utc(2024, 3, 17)
    assert cron.next_times("0 0 * * fri-mon", AFTER, 5) == [
        utc(2024, 3, 15),
        utc(2024, 3, 16),
        utc(2024, 3, 17),
        utc(2024, 3, 18),
        utc(2024, 3, 22),
    ]


def test_lists_ranges_and_steps():
    assert cron.next_times("1-9/2 * * * *", AFTER, 3) == [
        utc(2024, 3, 14, 11, 1),
        utc(2024, 3, 14, 11, 3),
        utc(2024, 3, 14, 11, 5),
    ]
    assert cron.next_times("0,30 * * * *", AFTER, 2) == [
        utc(2024, 3, 14, 10, 30),
        utc(2024, 3, 14, 11),
    ]
    assert cron.next_times("/5 * * * *", AFTER, 2) == [
        utc(2024, 3, 14, 10, 20),
        utc(2024, 3, 14, 10, 25),
    ]
    assert cron.next_times("0 22-2/2 * * *", AFTER, 3) == [
        utc(2024, 3, 14, 22),
        utc(2024, 3, 15, 0),
        utc(2024, 3, 15, 2),
    ]


def test_a_sixth_leading_field_is_seconds():
    assert cron.next_times("*/15 * * * * *", AFTER, 2) == [
        utc(2024, 3, 14, 10, 17, 45),
        utc(2024, 3, 14, 10, 18, 0),
    ]
    assert cron.next_time("30 0 12 * * *", AFTER) == utc(2024, 3, 14, 12, 0, 30)
    assert cron.next_time("5 0 1 * * * Europe/London", AFTER) == utc(2024, 3, 15, 1, 0, 5)


def test_five_fields_and_a_zone_are_not_mistaken_for_seconds():
    assert cron.next_times("*/15 * * * * UTC", AFTER, 2) == [
        utc(2024, 3, 14, 10, 30),
        utc(2024, 3, 14, 10, 45),
    ]
    assert cron.next_time("0 0 * * * mon", AFTER) == utc(2024, 3, 18, 0, 0, 0)  # seconds form


@pytest.mark.parametrize(
    "special, expected",
    [
        ("@yearly", utc(2025, 1, 1)),
        ("@annually", utc(2025, 1, 1)),
        ("@monthly", utc(2024, 4, 1)),
        ("@weekly", utc(2024, 3, 17)),
        ("@daily", utc(2024, 3, 15)),
        ("@midnight", utc(2024, 3, 15)),
        ("@noon", utc(2024, 3, 14, 12)),
        ("@hourly", utc(2024, 3, 14, 11)),
    ],
)
def test_specials(special, expected):
    assert cron.next_time(special, AFTER) == expected


# -- strictness, now and the schedule object --------------------------------------------------


def test_next_is_strictly_after_and_previous_strictly_before_to_the_second():
    hourly = "0 * * * *"
    assert cron.next_time(hourly, utc(2024, 3, 14, 10)) == utc(2024, 3, 14, 11)
    assert cron.next_time(hourly, utc(2024, 3, 14, 9, 59, 59, 999000)) == utc(2024, 3, 14, 10)
    assert cron.previous_time(hourly, utc(2024, 3, 14, 10)) == utc(2024, 3, 14, 9)
    assert cron.previous_time(hourly, utc(2024, 3, 14, 10, 0, 1)) == utc(2024, 3, 14, 10)
    # inputs are truncated to the second, as fugit does
    assert cron.previous_time(hourly, utc(2024, 3, 14, 10, 0, 0, 500000)) == utc(2024, 3, 14, 9)


def test_none_means_rjbatchs_clock_now(frozen_clock):
    assert cron.next_time("0 * * * *") == utc(2026, 1, 15, 13)
    assert cron.previous_time("0 * * * *") == utc(2026, 1, 15, 11)
    assert cron.next_times("0 * * * *", None, 2) == [utc(2026, 1, 15, 13), utc(2026, 1, 15, 14)]


def test_a_parsed_schedule_matches_only_its_own_times():
    noon = cron.parse("0 12 * * *")
    assert noon.matches(utc(2024, 3, 14, 12)) and not noon.matches(utc(2024, 3, 14, 12, 0, 1))
    assert noon.next_time(AFTER) == utc(2024, 3, 14, 12)
    assert noon.previous_time(AFTER) == utc(2024, 3, 13, 12)
    assert cron.parse("30 2 * * * America/New_York").matches(utc(2024, 3, 10, 7))
    assert not cron.parse("30 1 * * * America/New_York").matches(utc(2024, 11, 3, 6, 30))
    assert cron.next_time(noon, AFTER) == utc(2024, 3, 14, 12)
    assert noon.zone_name == "UTC" and str(noon) == "0 12 * * *"


def test_next_time_is_fast():
    schedule = "0 1 * * * America/New_York"
    cron.next_time(schedule, AFTER)
    started = time.perf_counter()
    for _ in range(1000):
        cron.next_time(schedule, AFTER)
    assert time.perf_counter() - started < 0.5  # typically ~15 µs a call


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, reason",
    [
        ("blah", "expected 5 fields"),
        ("", "it is empty"),
        ("* * * *", "got 4"),
        ("* * * * * * * *", "got 8"),
        ("61 * * * *", "minute field '61': 61 is out of range, 0-59"),
        ("* 25 * * *", "hour field '25': 25 is out of range, 0-23"),
        ("* * 32 * *", "day-of-month field '32': 32 is out of range"),
        ("* * 0 * *", "day-of-month field '0': 0 is out of range"),
        ("* * -32 * *", "day-of-month field '-32': -32 is out of range"),
        ("* * * 13 *", "month field '13': 13 is out of range, 1-12"),
        ("* * * foo *", "month field 'foo': unknown month name 'foo'"),
        ("* * * * 8", "day-of-week field '8': 8 is out of range, 0-7"),
        ("* * * * xyz", "day-of-week field 'xyz': unknown day name 'xyz'"),
        ("* * * * mon#6", "day-of-week field 'mon#6': in 'mon#6' the week must be 1 to 5"),
        ("*/0 * * * *", "minute field '*/0': the step in '*/0' must be a number >= 1"),
        ("-5 * * * *", "minute field '-5': negative values are only allowed in day-of-month"),
        ("* L * * *", "hour field 'L': L is only allowed in day-of-month"),
        ("* * L-5 * *", "day-of-month field 'L-5': range 'L-5' runs from a day counted from"),
        ("1,,2 * * * *", "minute field '1,,2' has an empty list item"),
        ("0 0 30 2 *", "day-of-month '30' never occurs in Feb"),
        ("0 0 31 4,6 *", "day-of-month '31' never occurs in Apr, Jun"),
        ("0 0 1 * mon#2&", "it never occurs"),
        ("0 1 * * * Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("@reboot", "unknown special '@reboot'"),
    ],
)
def test_invalid_expressions_name_the_expression_and_the_field(expr, reason):
    with pytest.raises(InvalidCron) as raised:
        cron.parse(expr)
    assert str(raised.value).startswith(f'Invalid cron_schedule: "{expr}": ')
    assert reason in raised.value.reason
    assert isinstance(raised.value, ValueError)
    with pytest.raises(ValueError):
        cron.next_time(expr, AFTER)


def test_an_impossible_schedule_fails_fast_instead_of_looping():
    started = time.perf_counter()
    with pytest.raises(InvalidCron, match="never occurs"):
        cron.next_time("0 0 30 2 *", AFTER)
    assert time.perf_counter() - started < 0.1


def test_a_fixed_offset_zone_token_is_validated():
    with pytest.raises(InvalidCron, match="out of range"):
        cron.parse("0 0 * * * +25:00")
    assert cron.parse("0 0 * * * -05:00").zone == timezone(-timedelta(hours=5))
