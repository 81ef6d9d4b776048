"""Frame lists as artists and Blender write them ("1-100,120,130-140x2"), and chunking.

No `bpy` here: the coordinator, the CLI and the add-on all parse frame lists,
and the add-on's copy must be testable without Blender.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Sequence

# Blender's hard limits for a frame number (MINAFRAME / MAXFRAME in
# DNA_scene_types.h; the same in 3.4 and 5.0). Negative frames need the
# "Allow Negative Frames" preference, but they are legal in a scene.
MIN_FRAME = -1048574
MAX_FRAME = 1048574

# A job of more frames than this is a typo ("1-1000000"), not a film.
MAX_FRAMES = 1_000_000

# One comma-separated entry: "7", "-5", "1-10", "-5 - -1", "1-10x2".
# Digits are matched greedily and checked for range afterwards, so that an
# absurd number gets an "out of range" message instead of "garbage".
_ENTRY = re.compile(
    r"""
    (?P<start>-?\d+)
    (?:\s*-\s*(?P<end>-?\d+)            # "-" between two numbers is a range
        (?:\s*[xX]\s*(?P<step>\d+))?    # Flamenco-style step: every Nth frame
    )?
    """,
    re.VERBOSE | re.ASCII,  # int() would accept other scripts' digits too
)

_EXAMPLE = "e.g. '1-100', '1,5,10-20' or '1-10x2'"


class FrameError(ValueError):
    """A frame list or chunk size that cannot be used; the message says what to type."""


# Bounds checked before any frame is expanded, so that the cost of a list is
# known from its text: at most MAX_LIST_CHARACTERS long, MAX_ENTRIES entries,
# and MAX_FRAMES frames counting repeats ("1-1000000" forty times is refused
# at once instead of being expanded forty times).
MAX_LIST_CHARACTERS = 100_000
MAX_ENTRIES = 10_000


def parse_frames(text: str) -> list[int]:
    """Frames in the order given, each once, so a job renders what the artist typed.

    Duplicates are dropped (first wins) because rendering a frame twice in one
    job only wastes farm time and makes two tasks race for one output file.
    """
    ranges = _ranges(text)
    if _disjoint(ranges):  # the usual case: no frame twice, expanded at C speed
        return list(itertools.chain.from_iterable(ranges))
    if all(r.step == 1 for r in ranges):
        return _first_seen(ranges)
    return list(dict.fromkeys(itertools.chain.from_iterable(ranges)))


def _first_seen(ranges: list[range]) -> list[int]:
    """Overlapping runs of frames, each frame once where it first appears.

    Keeps the frames covered so far as sorted disjoint spans and adds, for each
    run, only the gaps between them: every frame is expanded once, however
    often the list repeats it.
    """
    starts: list[int] = []  # covered spans [start, end), sorted, disjoint
    ends: list[int] = []
    out: list[int] = []
    for run in ranges:
        low, high = run.start, run.stop
        first = last = bisect.bisect_right(ends, low)  # the first span ending after low
        at = low
        while last < len(starts) and starts[last] < high:
            if starts[last] > at:
                out.extend(range(at, starts[last]))
            at = max(at, ends[last])
            last += 1
        if at < high:
            out.extend(range(at, high))
        if first < last:  # merge the spans this run touched into one
            low, high = min(low, starts[first]), max(high, ends[last - 1])
        starts[first:last], ends[first:last] = [low], [high]
    return out


def _ranges(text: str) -> list[range]:
    """The list's entries as ranges, each checked, none expanded."""
    if not isinstance(text, str) or not text.strip():
        raise FrameError(f"frames: the frame list is empty; expected {_EXAMPLE}")
    if len(text) > MAX_LIST_CHARACTERS:
        raise FrameError(
            f"frames: the frame list is {len(text):,} characters long; at most"
            f" {MAX_LIST_CHARACTERS:,}. Write runs of frames as ranges ({_EXAMPLE})"
        )
    entries = text.split(",", MAX_ENTRIES)
    if len(entries) > MAX_ENTRIES:
        raise FrameError(
            f"frames: {_short(text)} has more than {MAX_ENTRIES:,} entries; write runs of"
            f" frames as ranges ({_EXAMPLE})"
        )
    ranges, total = [], 0
    for entry in entries:
        frames = _parse_entry(entry, text)
        total += len(frames)
        if total > MAX_FRAMES:
            raise FrameError(
                f"frames: {_short(text)} has more than {MAX_FRAMES:,} frames (counting"
                " repeats); render fewer frames per job"
            )
        ranges.append(frames)
    return ranges


def _disjoint(ranges: list[range]) -> bool:
    """Whether no two ranges can share a frame (their spans do not overlap)."""
    spans = sorted((r[0], r[-1]) for r in ranges)
    return all(prev[1] < nxt[0] for prev, nxt in itertools.pairwise(spans))


def _short(text: str) -> str:
    """A frame list for a message: long ones cut, so the message stays readable."""
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")


def _parse_entry(entry: str, text: str) -> range:
    """One comma-separated entry as a range, checked before anything is expanded."""
    part = entry.strip()
    if not part:
        raise FrameError(f"frames: {_short(text)} has an empty entry; remove the extra comma")
    match = _ENTRY.fullmatch(part)
    if match is None:
        raise FrameError(f"frames: {_short(part)} is not a frame or a range; expected {_EXAMPLE}")
    start = _to_frame(match["start"], part)
    if match["end"] is None:
        return range(start, start + 1)
    end = _to_frame(match["end"], part)
    if end < start:
        raise FrameError(f"frames: {_short(part)} is a backwards range; write it as {end}-{start}")
    step = _to_step(match["step"], part)
    frames = range(start, end + 1, step)
    if len(frames) > MAX_FRAMES:
        raise FrameError(f"frames: {_short(part)} has more than {MAX_FRAMES:,} frames")
    return frames


def _to_step(digits: str | None, part: str) -> int:
    """The step after "x"; 0 means nothing and a huge one is surely a typo."""
    if digits is None:
        return 1
    if len(digits) <= 8 and 1 <= int(digits) <= MAX_FRAMES:
        return int(digits)
    raise FrameError(f"frames: step {digits} in {_short(part)} must be from 1 to {MAX_FRAMES:,}")


def _to_frame(digits: str, part: str) -> int:
    """A frame number within Blender's limits; huge digit strings never reach int()."""
    if len(digits.lstrip("-")) <= 8:
        frame = int(digits)
        if MIN_FRAME <= frame <= MAX_FRAME:
            return frame
    raise FrameError(
        f"frames: {digits} in {_short(part)} is out of range; Blender frames go from "
        f"{MIN_FRAME} to {MAX_FRAME}"
    )


def format_frames(frames: Iterable[int]) -> str:
    """The shortest list parse_frames reads back as the same set ("1-3,5,7-9").

    Sorted ascending so that logs and the dashboard show one spelling per set;
    an empty input gives "" (parse_frames rejects that, on purpose).
    """
    runs: list[list[int]] = []
    for frame in sorted(set(frames)):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def chunk_frames(frames: Sequence[int], chunk_size: int) -> list[list[int]]:
    """Consecutive chunks, in the given order, one per render task.

    Order is kept (not sorted) so an artist who lists key frames first gets
    them back first.
    """
    if chunk_size < 1:
        raise FrameError(f"frames: chunk size {chunk_size} is too small; it must be 1 or more")
    return [list(frames[i : i + chunk_size]) for i in range(0, len(frames), chunk_size)]
