"""An action and everything inside it as a waterfall: one row per action, indented by its
depth under the action shown, with a bar placed by its start time and sized by its duration
on the time axis of the whole tree (a trace's spans, a job's steps recorded as actions).

Bars are drawn in SVG, whose coordinates are attributes, so the console's style policy (no
inline styles) holds; the axis runs from 0 to `SCALE`. An action without a start is placed at
its completion (or recording) minus its duration; one without a duration is a thin mark. A
child is listed under its parent, siblings in order of start.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from app.actions.statuses import FAILED

SCALE = 1000.0
MIN_WIDTH = 2.0  # a bar never thinner than this, so an instant still shows
MAX_INDENT = 12  # deeper rows are indented as this level (the depth is still shown)


@dataclass(frozen=True)
class Bar:
    id: UUID
    action_type: str
    action_name: str | None
    status: str
    failed: bool
    depth: int
    indent: int
    duration_ms: int | None
    offset_ms: float
    x: float
    width: float


def _interval(row: dict[str, Any]) -> tuple[datetime, datetime]:
    duration = timedelta(milliseconds=row["execution_time_ms"] or 0)
    start = row["started_at"]
    if start is None:
        end = row["completed_at"] or row["created_at"]
        return end - duration, end
    end = row["completed_at"] or start + duration
    return start, max(start, end)


def waterfall(root: dict[str, Any], descendants: list[dict[str, Any]]) -> list[Bar]:
    """The rows of the waterfall of `root` and its descendants, root first."""
    children: defaultdict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in descendants:
        children[row["parent_id"]].append(row)
    intervals = {row["id"]: _interval(row) for row in [root, *descendants]}
    first = min(start for start, _ in intervals.values())
    last = max(end for _, end in intervals.values())
    total_ms = max((last - first) / timedelta(milliseconds=1), 1e-3)
    bars: list[Bar] = []
    stack: list[tuple[dict[str, Any], int]] = [(root, 0)]
    while stack:  # depth first, without recursion: a deep tree must not exhaust the stack
        row, depth = stack.pop()
        start, end = intervals[row["id"]]
        offset = (start - first) / timedelta(milliseconds=1)
        length = (end - start) / timedelta(milliseconds=1)
        x = SCALE * offset / total_ms
        width = max(MIN_WIDTH, SCALE * length / total_ms)
        bars.append(
            Bar(
                id=row["id"],
                action_type=row["action_type"],
                action_name=row["action_name"],
                status=row["status"],
                failed=row["status"] in FAILED,
                depth=depth,
                indent=min(depth, MAX_INDENT),
                duration_ms=row["execution_time_ms"],
                offset_ms=round(offset, 1),
                x=round(min(x, SCALE - MIN_WIDTH), 2),
                width=round(min(width, SCALE - min(x, SCALE - MIN_WIDTH)), 2),
            )
        )
        ordered = sorted(
            children.get(row["id"], []), key=lambda r: (intervals[r["id"]][0], str(r["id"]))
        )
        stack.extend((child, depth + 1) for child in reversed(ordered))
    return bars
