"""How a statistic's time range is read: split into whole days, hours and minutes that the
rollups answer, and raw edges that the rows answer (`plan`); each kind is then read in one
statement (`sorted_parts`). app/stats/service.py folds what each part returns.
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.actions.filters import ActionFilter
from app.actions.rollups import DAY, HOUR, MINUTE
from app.stats.repository import RollupStatsRepository

Part = tuple[int | None, ActionFilter]  # (rollup period in seconds, or None for raw rows)


def sorted_parts(parts: list[Part]) -> tuple[list[tuple[int, ActionFilter]], list[ActionFilter]]:
    """The rollup parts and the raw ones of a plan: each kind is read in one statement."""
    rollups = [(period, f) for period, f in parts if period is not None]
    return rollups, [f for period, f in parts if period is None]


def _floor(moment: datetime, period: int) -> datetime:
    return datetime.fromtimestamp(moment.timestamp() // period * period, UTC)


def _ceil(moment: datetime, period: int) -> datetime:
    floor = _floor(moment, period)
    return floor if floor == moment else floor + timedelta(seconds=period)


PERIODS = (DAY, HOUR, MINUTE)  # coarsest first
USER_PERIODS = (DAY, HOUR)


def plan(
    f: ActionFilter,
    periods: tuple[int, ...] = PERIODS,
    *,
    now: datetime | None = None,
    covers: Callable[[ActionFilter], bool] = RollupStatsRepository.covers,
) -> list[Part]:
    """Split a filter's range into whole days, hours, then minutes of rollups, then raw edges.

    A range of 30 days and some minutes reads about 30 daily rollups per combination, up to 46
    hourly and 118 minute ones at its ends, and raw rows only for the seconds before its first
    whole minute and after its last (without minutes, as for users: the minutes before its
    first whole hour and after its last). A range that ends now (or later within the current
    hour) has no end edge: nothing is recorded after now (`created_at` is the server's time of
    recording), so the current hour's rollups, exact like every other, stand for it up to the
    end of the hour, and a burst of rows in the last minutes costs no more than a quiet hour.
    Filters on fields that the rollups do not keep (`covers`: session, text, duration …) read
    raw rows for the whole range.
    """
    if not covers(f):
        return [(None, f)]
    until = f.until
    if until is not None and now is not None and now <= until < _ceil(now, HOUR):
        until = _ceil(now, HOUR)
    return _split(f, f.since, until, periods)


def _split(
    f: ActionFilter, since: datetime | None, until: datetime | None, periods: tuple[int, ...]
) -> list[Part]:
    if not periods:
        return [(None, replace(f, since=since, until=until))]
    period, finer = periods[0], periods[1:]
    start = None if since is None else _ceil(since, period)
    end = None if until is None else _floor(until, period)
    if start is not None and end is not None and start >= end:
        return _split(f, since, until, finer)
    parts: list[Part] = [(period, replace(f, since=start, until=end))]
    if since is not None and start is not None and since < start:
        parts += _split(f, since, start, finer)
    if until is not None and end is not None and end < until:
        parts += _split(f, end, until, finer)
    return parts
