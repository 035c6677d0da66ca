"""Cron schedules: parse a cron expression and find its next and previous times.

The syntax is fugit's (what Rocket Job uses): 5 fields (minute hour day-of-month month
day-of-week) or 6 with a leading seconds field, then an optional time zone::

    next_time("0 1 * * * America/New_York", after)   # 01:00 New York time, as UTC
    previous_time("0 12 L * *", before)              # noon on the last day of a month

Lists, ranges and steps (``0,30`` ``1-9/2`` ``*/10``), month and day names, ``L`` and
negative days of the month (``-1`` is the last day), ``Mon#1``/``Sun#-1`` (the first
Monday / last Sunday of the month), ``tue%2`` (every other Tuesday) and the ``@daily``
family. Without a zone the times are UTC. Every result is a timezone-aware UTC
``datetime``; naive inputs are taken as UTC. See ``docs/cron.md``.

Across daylight-saving changes rjbatch follows cron: a schedule whose hour field is
``*`` (or ``*/n``) follows real time; any other schedule fires once a day, at the first
instant after a gap for a wall-clock time the change skips, and at the first occurrence
only for a wall-clock time that happens twice.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rjbatch import clock

__all__ = [
    "CronSchedule",
    "InvalidCron",
    "next_time",
    "next_times",
    "parse",
    "previous_time",
]

_SECOND = timedelta(seconds=1)
_MAX_MONTHS = 12 * 400 + 1  # the Gregorian calendar repeats every 400 years
_REFERENCE_WEEK_START = date(2019, 1, 1).toordinal()  # fugit's week 1 for `tue%2`

_SPECIALS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@noon": "0 12 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1
    )
}
_DAY_NAMES = {name: number for number, name in enumerate("sun mon tue wed thu fri sat".split())}
_MAX_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_UTC_NAMES = {"UTC", "Z", "ETC/UTC", "GMT", "ETC/GMT"}

_OFFSET_ZONE = re.compile(r"^([+-])(\d\d):?(\d\d)$")
_RANGE = re.compile(r"^(-?[0-9A-Za-z]+)(?:-(-?[0-9A-Za-z]+))?$")
_HASH = re.compile(r"^([0-9A-Za-z]+)#(-?\d+|l|last)$", re.IGNORECASE)
_MODULO = re.compile(r"^([0-9A-Za-z]+)%(\d+)(?:\+(\d+))?$")
_WORDS = re.compile(r"[A-Za-z]+")

_NORMAL, _REPEATED, _SKIPPED = 0, 1, 2


class InvalidCron(ValueError):
    """A cron expression that cannot be parsed, or that never occurs.

    ``expression`` is the text given and ``reason`` names the field at fault.
    """

    def __init__(self, expression: str, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f'Invalid cron_schedule: "{expression}": {reason}')


class _Field:
    """How one numeric field is read: its name, accepted values and cycle."""

    __slots__ = ("name", "low", "high", "cycle_high", "shown_high", "names")

    def __init__(
        self, name: str, low: int, high: int, cycle_high: int, names: dict[str, int] | None = None
    ) -> None:
        self.name = name
        self.low = low
        self.high = high  # the largest value accepted (24 for hours, 7 for days of week)
        self.cycle_high = cycle_high  # the largest value `*` and wrapping ranges reach
        self.shown_high = 7 if high == 7 else cycle_high  # hour 24 (= 0) is accepted, not shown
        self.names = names or {}


_SECONDS = _Field("second", 0, 59, 59)
_MINUTES = _Field("minute", 0, 59, 59)
_HOURS = _Field("hour", 0, 24, 23)
_MONTHS = _Field("month", 1, 12, 12, _MONTH_NAMES)
_WEEKDAYS = _Field("day-of-week", 0, 7, 6, _DAY_NAMES)


class CronSchedule:
    """A parsed cron expression. Build one with :func:`parse`; it is immutable."""

    __slots__ = (
        "expression",
        "zone_name",
        "zone",
        "seconds",
        "minutes",
        "hours",
        "months",
        "follows_real_time",
        "_month_set",
        "_dom_by_length",
        "_dom_restricted",
        "_dow_days",
        "_dow_hashes",
        "_dow_modulos",
        "_dow_restricted",
        "_days_and",
        "_fixed_offset",
        "_first_time",
        "_last_time",
        "_day_cache",
    )

    def __init__(
        self,
        expression: str,
        zone_name: str,
        zone: tzinfo,
        seconds: tuple[int, ...],
        minutes: tuple[int, ...],
        hours: tuple[int, ...],
        months: tuple[int, ...],
        dom_by_length: dict[int, frozenset[int]],
        dom_restricted: bool,
        dow_days: frozenset[int],
        dow_hashes: tuple[tuple[int, int], ...],
        dow_modulos: tuple[tuple[int, int, int], ...],
        dow_restricted: bool,
        days_and: bool,
        follows_real_time: bool,
    ) -> None:
        self.expression = expression
        self.zone_name = zone_name
        self.zone = zone
        self.seconds = seconds
        self.minutes = minutes
        self.hours = hours
        self.months = months
        self.follows_real_time = follows_real_time
        self._month_set = frozenset(months)
        self._dom_by_length = dom_by_length
        self._dom_restricted = dom_restricted
        self._dow_days = dow_days
        self._dow_hashes = dow_hashes
        self._dow_modulos = dow_modulos
        self._dow_restricted = dow_restricted
        self._days_and = days_and
        self._fixed_offset = zone.utcoffset(None) if isinstance(zone, timezone) else None
        self._first_time = (hours[0], minutes[0], seconds[0])
        self._last_time = (hours[-1], minutes[-1], seconds[-1])
        self._day_cache: dict[tuple[int, int], tuple[int, ...]] = {}

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r})"

    def __str__(self) -> str:
        return self.expression

    # -- public API -----------------------------------------------------------------

    def next_time(self, after: datetime | None = None) -> datetime:
        """The first time strictly after ``after`` (default now), as an aware UTC datetime."""
        try:
            return self._next(_instant(after))
        except OverflowError:
            raise InvalidCron(self.expression, "no occurrence before the year 10000") from None

    def previous_time(self, before: datetime | None = None) -> datetime:
        """The last time strictly before ``before`` (default now), as an aware UTC datetime."""
        try:
            return self._previous(_instant(before))
        except OverflowError:
            raise InvalidCron(self.expression, "no occurrence after the year 1") from None

    def next_times(self, after: datetime | None = None, count: int = 5) -> list[datetime]:
        """The next ``count`` times after ``after`` (default now), in order."""
        times: list[datetime] = []
        current = _instant(after)
        for _ in range(count):
            current = self.next_time(current)
            times.append(current)
        return times

    def matches(self, when: datetime) -> bool:
        """Whether the schedule fires at ``when`` (truncated to the second)."""
        instant = _instant(when)
        return self.next_time(instant - _SECOND) == instant

    # -- the search, in instants ----------------------------------------------------

    def _next(self, after: datetime) -> datetime:
        local = after.astimezone(self.zone)
        wall = local.replace(tzinfo=None, fold=0)
        kind = self._classify(wall)
        if kind[0] == _REPEATED:  # `after` is inside the hour that happens twice
            _, _, before_offset, after_offset = kind
            start, end = self._repeated_walls(kind)
            if local.fold == 0:  # still in the first pass
                candidate = self._next_wall(wall)
                if candidate < end:
                    return _utc(candidate - before_offset)
                if self.follows_real_time:
                    candidate = self._next_wall(start - _SECOND)
                    if candidate < end:
                        return _utc(candidate - after_offset)
            elif self.follows_real_time:
                candidate = self._next_wall(wall)
                if candidate < end:
                    return _utc(candidate - after_offset)
            wall = end - _SECOND
        while True:
            candidate = self._next_wall(wall)
            kind = self._classify(candidate)
            if kind[0] == _NORMAL:
                return _utc(candidate - kind[1])
            if kind[0] == _REPEATED:
                return _utc(candidate - kind[2])  # its first occurrence comes first
            if not self.follows_real_time:
                return kind[1]  # a skipped time fires when the gap ends
            wall = kind[1].replace(tzinfo=None) + kind[3] - _SECOND  # walls after the gap

    def _previous(self, before: datetime) -> datetime:
        local = before.astimezone(self.zone)
        wall = local.replace(tzinfo=None, fold=0)
        kind = self._classify(wall)
        if kind[0] == _REPEATED:
            _, _, before_offset, after_offset = kind
            start, end = self._repeated_walls(kind)
            if local.fold == 1:  # in the second pass
                if self.follows_real_time:
                    candidate = self._previous_wall(wall)
                    if candidate >= start:
                        return _utc(candidate - after_offset)
                candidate = self._previous_wall(end)
            else:
                candidate = self._previous_wall(wall)
            if candidate >= start:
                return _utc(candidate - before_offset)
            wall = start
        while True:
            candidate = self._previous_wall(wall)
            kind = self._classify(candidate)
            if kind[0] == _NORMAL:
                return _utc(candidate - kind[1])
            if kind[0] == _REPEATED:
                offset = kind[3] if self.follows_real_time else kind[2]
                return _utc(candidate - offset)  # the last occurrence that counts
            transition = kind[1]
            if not self.follows_real_time and transition < before:
                return transition
            wall = transition.replace(tzinfo=None) + kind[2]  # walls before the gap

    def _classify(self, wall: datetime) -> tuple:
        """How a wall-clock time maps to instants in the zone.

        ``(_NORMAL, offset)``, or ``(_REPEATED | _SKIPPED, transition, offset_before,
        offset_after)`` with ``transition`` the aware UTC instant the offset changes.
        """
        if self._fixed_offset is not None:
            return (_NORMAL, self._fixed_offset)
        before_offset = wall.replace(tzinfo=self.zone).utcoffset()
        after_offset = wall.replace(tzinfo=self.zone, fold=1).utcoffset()
        # a zone's tzinfo (ZoneInfo or a fixed offset) gives every wall time an offset
        assert before_offset is not None and after_offset is not None
        if before_offset == after_offset:
            return (_NORMAL, before_offset)
        # fold=0 reads the wall with the offset before the change, fold=1 with the one after
        low = wall - max(before_offset, after_offset)  # an instant before the change
        high = wall - min(before_offset, after_offset)  # an instant at or after it
        transition = self._transition(low, high, before_offset)
        kind = _REPEATED if before_offset > after_offset else _SKIPPED
        return (kind, transition, before_offset, after_offset)

    def _transition(self, low: datetime, high: datetime, before_offset: timedelta) -> datetime:
        """The first second at which the zone's offset stops being ``before_offset``."""
        lo = int(low.replace(tzinfo=UTC).timestamp())
        hi = int(high.replace(tzinfo=UTC).timestamp())
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, self.zone).utcoffset() == before_offset:
                lo = mid
            else:
                hi = mid
        return datetime.fromtimestamp(hi, UTC)

    @staticmethod
    def _repeated_walls(kind: tuple) -> tuple[datetime, datetime]:
        """The wall-clock span ``[start, end)`` that a fall-back change repeats."""
        _, transition, before_offset, after_offset = kind
        naive = transition.replace(tzinfo=None)
        return naive + after_offset, naive + before_offset

    # -- the search, in wall-clock time ---------------------------------------------

    def _next_wall(self, wall: datetime) -> datetime:
        """The first matching wall-clock time strictly after ``wall``."""
        start = wall + _SECOND
        year, month, day = start.year, start.month, start.day
        time_of_day: tuple[int, int, int] | None = (start.hour, start.minute, start.second)
        for _ in range(_MAX_MONTHS):
            if month in self._month_set:
                days = self._days(year, month)
                i = bisect_left(days, day)
                if time_of_day is not None and i < len(days) and days[i] == day:
                    found = self._time_at_or_after(time_of_day)
                    if found is not None:
                        return datetime(year, month, day, *found)
                    i += 1
                if i < len(days):
                    return datetime(year, month, days[i], *self._first_time)
            month += 1
            if month == 13:
                year, month = year + 1, 1
                if year > 9999:
                    raise OverflowError("year out of range")
            day, time_of_day = 1, None
        raise InvalidCron(self.expression, "it never occurs: no match in 400 years")

    def _previous_wall(self, wall: datetime) -> datetime:
        """The last matching wall-clock time strictly before ``wall``."""
        start = wall - _SECOND
        year, month, day = start.year, start.month, start.day
        time_of_day: tuple[int, int, int] | None = (start.hour, start.minute, start.second)
        for _ in range(_MAX_MONTHS):
            if month in self._month_set:
                days = self._days(year, month)
                i = bisect_right(days, day) - 1
                if time_of_day is not None and i >= 0 and days[i] == day:
                    found = self._time_at_or_before(time_of_day)
                    if found is not None:
                        return datetime(year, month, day, *found)
                    i -= 1
                if i >= 0:
                    return datetime(year, month, days[i], *self._last_time)
            month -= 1
            if month == 0:
                year, month = year - 1, 12
                if year < 1:
                    raise OverflowError("year out of range")
            day, time_of_day = 31, None
        raise InvalidCron(self.expression, "it never occurs: no match in 400 years")

    def _time_at_or_after(self, hms: tuple[int, int, int]) -> tuple[int, int, int] | None:
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        h, m, s = hms
        i = bisect_left(hours, h)
        if i < len(hours) and hours[i] == h:
            j = bisect_left(minutes, m)
            if j < len(minutes) and minutes[j] == m:
                k = bisect_left(seconds, s)
                if k < len(seconds):
                    return (h, m, seconds[k])
                j += 1
            if j < len(minutes):
                return (h, minutes[j], seconds[0])
            i += 1
        if i < len(hours):
            return (hours[i], minutes[0], seconds[0])
        return None

    def _time_at_or_before(self, hms: tuple[int, int, int]) -> tuple[int, int, int] | None:
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        h, m, s = hms
        i = bisect_right(hours, h) - 1
        if i >= 0 and hours[i] == h:
            j = bisect_right(minutes, m) - 1
            if j >= 0 and minutes[j] == m:
                k = bisect_right(seconds, s) - 1
                if k >= 0:
                    return (h, m, seconds[k])
                j -= 1
            if j >= 0:
                return (h, minutes[j], seconds[-1])
            i -= 1
        if i >= 0:
            return (hours[i], minutes[-1], seconds[-1])
        return None

    def _days(self, year: int, month: int) -> tuple[int, ...]:
        """The matching days of one month, sorted (cached)."""
        key = (year, month)
        days = self._day_cache.get(key)
        if days is None:
            days = self._compute_days(year, month)
            if len(self._day_cache) >= 1024:
                self._day_cache.clear()
            self._day_cache[key] = days
        return days

    def _compute_days(self, year: int, month: int) -> tuple[int, ...]:
        first_weekday, length = calendar.monthrange(year, month)
        first = (first_weekday + 1) % 7  # cron counts from Sunday = 0
        dom = self._dom_by_length[length]
        matching = []
        for day in range(1, length + 1):
            dom_ok = day in dom
            dow_ok = self._weekday_matches(year, month, day, (first + day - 1) % 7, length)
            if self._dom_restricted and self._dow_restricted:
                ok = (dom_ok and dow_ok) if self._days_and else (dom_ok or dow_ok)
            elif self._dom_restricted:
                ok = dom_ok
            elif self._dow_restricted:
                ok = dow_ok
            else:
                ok = True
            if ok:
                matching.append(day)
        return tuple(matching)

    def _weekday_matches(self, year: int, month: int, day: int, weekday: int, length: int) -> bool:
        if weekday in self._dow_days:
            return True
        for wanted, nth in self._dow_hashes:
            if wanted == weekday:
                if nth > 0 and (day - 1) // 7 + 1 == nth:
                    return True
                if nth < 0 and -((length - day) // 7 + 1) == nth:
                    return True
        for wanted, modulo, offset in self._dow_modulos:
            if wanted == weekday:
                week = (date(year, month, day).toordinal() - _REFERENCE_WEEK_START) // 7 + 1
                if week % modulo == offset % modulo:
                    return True
        return False


# -- module functions ----------------------------------------------------------------


def parse(expr: str | CronSchedule) -> CronSchedule:
    """Parse a cron expression; raise :class:`InvalidCron` naming the bad field."""
    if isinstance(expr, CronSchedule):
        return expr
    if not isinstance(expr, str):
        raise InvalidCron(str(expr), f"expected a string, got {type(expr).__name__}")
    return _parse_cached(expr)


def next_time(expr: str | CronSchedule, after: datetime | None = None) -> datetime:
    """The first time of ``expr`` strictly after ``after`` (default now), aware UTC."""
    return parse(expr).next_time(after)


def previous_time(expr: str | CronSchedule, before: datetime | None = None) -> datetime:
    """The last time of ``expr`` strictly before ``before`` (default now), aware UTC."""
    return parse(expr).previous_time(before)


def next_times(
    expr: str | CronSchedule, after: datetime | None = None, count: int = 5
) -> list[datetime]:
    """The next ``count`` times of ``expr`` after ``after`` (default now), aware UTC."""
    return parse(expr).next_times(after, count)


# -- helpers ---------------------------------------------------------------------------


def _instant(value: datetime | None) -> datetime:
    """``value`` as an aware UTC datetime truncated to the second (naive means UTC)."""
    if value is None:
        value = clock.now()
    elif not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    else:
        value = value.astimezone(UTC)
    return value.replace(microsecond=0)


def _utc(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=UTC)


@lru_cache(maxsize=512)
def _parse_cached(expr: str) -> CronSchedule:
    schedule = _Parser(expr).parse()
    # One probe: a schedule with no match in a whole 400-year calendar cycle never occurs
    # (such as the 1st being the 2nd Monday, "0 0 1 * mon#2&"); refuse it here, not later.
    schedule._next_wall(datetime(1999, 12, 31, 23, 59, 59))
    return schedule


class _Parser:
    """Reads one expression; every failure is an :class:`InvalidCron`."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def fail(self, reason: str) -> InvalidCron:
        return InvalidCron(self.expression, reason)

    def parse(self) -> CronSchedule:
        tokens = self.expression.split()
        if not tokens:
            raise self.fail("it is empty")
        zone_name = "UTC"
        zone: tzinfo = UTC
        if tokens[0].startswith("@"):
            special = tokens[0].lower()
            if special not in _SPECIALS:
                known = " ".join(_SPECIALS)
                raise self.fail(f"unknown special {tokens[0]!r}; known: {known}")
            if len(tokens) > 2:
                raise self.fail(f"{special} takes only an optional time zone after it")
            if len(tokens) == 2:
                zone_name, zone = self.zone(tokens[1])
            tokens = _SPECIALS[special].split()
        elif len(tokens) == 7 or (len(tokens) == 6 and _looks_like_zone(tokens[5])):
            zone_name, zone = self.zone(tokens[-1])
            tokens = tokens[:-1]
        if len(tokens) not in (5, 6):
            raise self.fail(
                f"expected 5 fields: minute hour day-of-month month day-of-week, optionally "
                f"after a seconds field and before a time zone; got {len(tokens)}"
            )
        if len(tokens) == 6:
            seconds = self.numeric(tokens[0], _SECONDS)
            tokens = tokens[1:]
        else:
            seconds = (0,)
        minute_text, hour_text, dom_text, month_text, dow_text = tokens
        minutes = self.numeric(minute_text, _MINUTES)
        hours = tuple(sorted({0 if h == 24 else h for h in self.numeric(hour_text, _HOURS)}))
        months = self.numeric(month_text, _MONTHS)
        days_and = False
        if dom_text.endswith("&") and len(dom_text) > 1:
            dom_text, days_and = dom_text[:-1], True
        if dow_text.endswith("&") and len(dow_text) > 1:
            dow_text, days_and = dow_text[:-1], True
        dom_restricted = dom_text != "*"
        dom_by_length = self.days_of_month(dom_text)
        dow_days, dow_hashes, dow_modulos = self.days_of_week(dow_text)
        dow_restricted = dow_text != "*"
        if dom_restricted:
            self.check_days_exist(dom_text, dom_by_length, months)
        return CronSchedule(
            expression=self.expression,
            zone_name=zone_name,
            zone=zone,
            seconds=seconds,
            minutes=minutes,
            hours=hours,
            months=months,
            dom_by_length=dom_by_length,
            dom_restricted=dom_restricted,
            dow_days=dow_days,
            dow_hashes=dow_hashes,
            dow_modulos=dow_modulos,
            dow_restricted=dow_restricted,
            days_and=days_and,
            follows_real_time=hour_text.startswith(("*", "/")),
        )

    # -- the time zone ---------------------------------------------------------------

    def zone(self, text: str) -> tuple[str, tzinfo]:
        offset = _OFFSET_ZONE.match(text)
        if offset:
            sign, hours, minutes = offset.groups()
            if int(hours) > 24 or int(minutes) > 59:
                raise self.fail(f"time zone offset {text!r} is out of range")
            delta = timedelta(hours=int(hours), minutes=int(minutes))
            return text, timezone(-delta if sign == "-" else delta)
        if text.upper() in _UTC_NAMES:
            return text, UTC
        try:
            return text, ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise self.fail(
                f"unknown time zone {text!r}; use an IANA name such as America/New_York, or UTC"
            ) from None

    # -- fields ------------------------------------------------------------------------

    def numeric(self, text: str, spec: _Field) -> tuple[int, ...]:
        """A seconds, minute, hour, month or plain day-of-week field, as sorted values."""
        values: set[int] = set()
        for item in self.items(text, spec.name):
            values.update(self.expand(item, text, spec))
        return tuple(sorted(values))

    def items(self, text: str, name: str) -> list[str]:
        items = text.split(",")
        if any(not item for item in items):
            raise self.fail(f"{name} field {text!r} has an empty list item")
        return items

    def split_step(self, item: str, text: str, name: str) -> tuple[str, int | None]:
        body, slash, step_text = item.partition("/")
        if not slash:
            return body, None
        if not step_text.isdigit() or int(step_text) < 1:
            raise self.fail(f"{name} field {text!r}: the step in {item!r} must be a number >= 1")
        return body, int(step_text)

    def expand(self, item: str, text: str, spec: _Field) -> list[int]:
        body, step = self.split_step(item, text, spec.name)
        if body in ("*", ""):
            if body == "" and step is None:
                raise self.fail(f"{spec.name} field {text!r} has an empty item")
            sequence = list(range(spec.low, spec.cycle_high + 1))
        else:
            match = _RANGE.match(body)
            if not match:
                raise self.fail(f"{spec.name} field {text!r}: cannot read {item!r}")
            start = self.value(match.group(1), text, spec)
            end = self.value(match.group(2), text, spec) if match.group(2) else None
            if end is None:
                sequence = [start] if step is None else list(range(start, spec.cycle_high + 1))
            elif start <= end:
                sequence = list(range(start, end + 1))
            else:  # a range that wraps around: 22-2 is 22,23,0,1,2; fri-mon is fri,sat,sun,mon
                sequence = list(range(start, spec.cycle_high + 1)) + list(range(spec.low, end + 1))
        if spec is _WEEKDAYS:
            sequence = [value % 7 for value in sequence]
        return sequence[:: step or 1]

    def value(self, token: str, text: str, spec: _Field) -> int:
        lowered = token.lower()
        if lowered in spec.names:
            return spec.names[lowered]
        if lowered.isdigit():
            number = int(lowered)
            if spec.low <= number <= spec.high:
                return number
            limits = f"{spec.low}-{spec.shown_high}"
            if spec.names:
                kind = "months" if spec is _MONTHS else "days"
                limits += f" or 3-letter names of {kind}"
            raise self.fail(f"{spec.name} field {text!r}: {token} is out of range, {limits}")
        if lowered.startswith("-") and lowered[1:].isdigit():
            raise self.fail(
                f"{spec.name} field {text!r}: negative values are only allowed in day-of-month"
            )
        if lowered in ("l", "last"):
            raise self.fail(f"{spec.name} field {text!r}: L is only allowed in day-of-month")
        if spec.names:
            kind = "month" if spec is _MONTHS else "day"
            known = ", ".join(spec.names)
            raise self.fail(
                f"{spec.name} field {text!r}: unknown {kind} name {token!r}; use {known}"
            )
        raise self.fail(f"{spec.name} field {text!r}: {token!r} is not a number")

    def days_of_month(self, text: str) -> dict[int, frozenset[int]]:
        """The matching days for each month length (28-31)."""
        name = "day-of-month"
        parsed: list[tuple[int | None, int | None, int]] = []
        for item in self.items(text, name):
            body, step = self.split_step(item, text, name)
            if body in ("*", ""):
                if body == "" and step is None:
                    raise self.fail(f"{name} field {text!r} has an empty item")
                parsed.append((None, None, step or 1))
                continue
            match = _RANGE.match(body)
            if not match:
                raise self.fail(f"{name} field {text!r}: cannot read {item!r}")
            start = self.day_value(match.group(1), text)
            end = self.day_value(match.group(2), text) if match.group(2) else None
            if end is None and step is not None:
                end = 31 if start > 0 else -1  # 5/10 runs to the 31st, -10/2 to the last day
            if end is not None and start < 0 < end:
                raise self.fail(
                    f"{name} field {text!r}: range {body!r} runs from a day counted from the "
                    f"end of the month to one counted from the start"
                )
            parsed.append((start, end, step or 1))
        return {length: _dom_days(parsed, length) for length in (28, 29, 30, 31)}

    def day_value(self, token: str, text: str) -> int:
        lowered = token.lower()
        if lowered in ("l", "last"):
            return -1
        sign = -1 if lowered.startswith("-") else 1
        digits = lowered[1:] if sign < 0 else lowered
        if not digits.isdigit():
            raise self.fail(f"day-of-month field {text!r}: cannot read {token!r}")
        number = sign * int(digits)
        if not (1 <= abs(number) <= 31):
            raise self.fail(
                f"day-of-month field {text!r}: {token} is out of range, 1-31, L, or -1 to -31 "
                f"counted from the end of the month"
            )
        return number

    def days_of_week(
        self, text: str
    ) -> tuple[frozenset[int], tuple[tuple[int, int], ...], tuple[tuple[int, int, int], ...]]:
        """Plain weekdays, ``(weekday, nth)`` for ``mon#2``, ``(weekday, n, k)`` for ``tue%2+1``."""
        plain: set[int] = set()
        hashes: set[tuple[int, int]] = set()
        modulos: set[tuple[int, int, int]] = set()
        for item in self.items(text, _WEEKDAYS.name):
            hashed = _HASH.match(item)
            if hashed:
                weekday = self.value(hashed.group(1), text, _WEEKDAYS) % 7
                nth_text = hashed.group(2).lower()
                nth = -1 if nth_text in ("l", "last") else int(nth_text)
                if not (1 <= abs(nth) <= 5):
                    raise self.fail(
                        f"day-of-week field {text!r}: in {item!r} the week must be 1 to 5, "
                        f"or -1 to -5 (L) counted from the end of the month"
                    )
                hashes.add((weekday, nth))
                continue
            modulo = _MODULO.match(item)
            if modulo:
                weekday = self.value(modulo.group(1), text, _WEEKDAYS) % 7
                every = int(modulo.group(2))
                if every < 1:
                    raise self.fail(f"day-of-week field {text!r}: {item!r} needs %1 or more")
                modulos.add((weekday, every, int(modulo.group(3) or 0)))
                continue
            if "#" in item or "%" in item:
                raise self.fail(
                    f"day-of-week field {text!r}: cannot read {item!r}; use e.g. mon#1, sun#-1, "
                    f"tue%2"
                )
            plain.update(self.expand(item, text, _WEEKDAYS))
        return frozenset(plain), tuple(sorted(hashes)), tuple(sorted(modulos))

    def check_days_exist(
        self, text: str, by_length: dict[int, frozenset[int]], months: tuple[int, ...]
    ) -> None:
        """Refuse a day-of-month that no chosen month has (Feb 30), as fugit does."""
        for month in months:
            lengths = (28, 29) if month == 2 else (_MAX_DAYS[month],)
            if any(by_length[length] for length in lengths):
                return
        names = ", ".join(calendar.month_abbr[month] for month in months)
        raise self.fail(f"day-of-month {text!r} never occurs in {names}")


def _dom_days(parsed: list[tuple[int | None, int | None, int]], length: int) -> frozenset[int]:
    """Resolve day-of-month items for a month of ``length`` days (-1 is the last day)."""

    def resolve(day: int) -> int:
        return day if day > 0 else length + 1 + day

    days: set[int] = set()
    for start, end, step in parsed:
        if start is None:  # `*` or `*/n`
            candidates = list(range(1, 32))[::step]
        elif end is None:
            candidates = [resolve(start)]
        elif (start > 0) == (end > 0):
            if start <= end:
                raw = list(range(start, end + 1))
            elif start > 0:  # wraps: 25-5
                raw = list(range(start, 32)) + list(range(1, end + 1))
            else:  # wraps: -3--25
                raw = list(range(start, 0)) + list(range(-31, end + 1))
            candidates = [resolve(day) for day in raw[::step]]
        else:  # 5--3: from the 5th to three days before the end, in this month
            candidates = list(range(start, resolve(end) + 1))[::step]
        days.update(day for day in candidates if 1 <= day <= length)
    return frozenset(days)


def _looks_like_zone(token: str) -> bool:
    """Whether the 6th token is a time zone rather than a day-of-week field."""
    if _OFFSET_ZONE.match(token):
        return True
    words = _WORDS.findall(token)
    return any(
        word.lower() not in _DAY_NAMES and word.lower() not in ("l", "last") for word in words
    )
