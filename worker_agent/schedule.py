"""Working hours: when a worker that is an artist's desktop by day takes tasks.

`--work-hours 19:00-07:30` (local time; a range may run past midnight; several
ranges separated by commas) lets the worker take new tasks only inside those
hours. A task it holds when the hours end is finished, not dropped: the farm
planned on it and the frame is nearly done. Outside them the worker asks for
nothing and lets its warm Blender go, so the machine is the artist's again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
DAY = 24 * 60


class BadHours(ValueError):
    """A --work-hours text that does not say hours."""


@dataclass(frozen=True)
class WorkHours:
    """Minutes after midnight, [start, end) pairs; end < start runs past midnight."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> WorkHours:
        ranges = []
        for part in text.split(","):
            match = _RANGE.match(part)
            if not match:
                raise BadHours(
                    f"--work-hours {text!r}: {part.strip()!r} is not a range like 19:00-07:30"
                    " (24-hour local times, several separated by commas)"
                )
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
                raise BadHours(f"--work-hours {text!r}: {part.strip()!r} is not a time of day")
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if start == end:
                raise BadHours(
                    f"--work-hours {text!r}: {part.strip()!r} is empty; leave the option out"
                    " to work at any hour"
                )
            ranges.append((start, end))
        return cls(tuple(ranges))

    def _minute(self, now: datetime) -> int:
        return now.hour * 60 + now.minute

    def working(self, now: datetime) -> bool:
        minute = self._minute(now)
        for start, end in self.ranges:
            if start < end and start <= minute < end:
                return True
            if start > end and (minute >= start or minute < end):
                return True
        return False

    def next_start(self, now: datetime) -> datetime:
        """When the hours next begin (now, if they have)."""
        if self.working(now):
            return now
        minute = self._minute(now)
        waits = [(start - minute) % DAY for start, _ in self.ranges]
        return now.replace(second=0, microsecond=0) + timedelta(minutes=min(waits))

    def describe(self) -> str:
        return ", ".join(f"{_clock(start)}-{_clock(end)}" for start, end in self.ranges)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
