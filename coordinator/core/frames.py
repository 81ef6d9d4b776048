"""Frame lists as artists and Blender write them ("1-100,120,130-140x2"), and chunking.

No `bpy` here: the coordinator, the CLI and the add-on all parse frame lists,
and the add-on's copy must be testable without Blender.
"""

from __future__ import annotations

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


def parse_frames(text: str) -> list[int]:
    """Frames in the order given, each once, so a job renders what the artist typed.

    Duplicates are dropped (first wins) because rendering a frame twice in one
    job only wastes farm time and makes two tasks race for one output file.
    """
    if not text.strip():
        raise FrameError(f"frames: the frame list is empty; expected {_EXAMPLE}")
    seen: dict[int, None] = {}
    for entry in text.split(","):
        for frame in _parse_entry(entry, text):
            seen[frame] = None
        if len(seen) > MAX_FRAMES:
            raise FrameError(f"frames: {text!r} has more than {MAX_FRAMES:,} frames")
    return list(seen)


def _parse_entry(entry: str, text: str) -> range:
    """One comma-separated entry as a range, checked before anything is expanded."""
    part = entry.strip()
    if not part:
        raise FrameError(f"frames: {text!r} has an empty entry; remove the extra comma")
    match = _ENTRY.fullmatch(part)
    if match is None:
        raise FrameError(f"frames: {part!r} is not a frame or a range; expected {_EXAMPLE}")
    start = _to_frame(match["start"], part)
    if match["end"] is None:
        return range(start, start + 1)
    end = _to_frame(match["end"], part)
    if end < start:
        raise FrameError(f"frames: {part!r} is a backwards range; write it as {end}-{start}")
    step = _to_step(match["step"], part)
    frames = range(start, end + 1, step)
    if len(frames) > MAX_FRAMES:
        raise FrameError(f"frames: {part!r} has more than {MAX_FRAMES:,} frames")
    return frames


def _to_step(digits: str | None, part: str) -> int:
    """The step after "x"; 0 means nothing and a huge one is surely a typo."""
    if digits is None:
        return 1
    if len(digits) <= 8 and 1 <= int(digits) <= MAX_FRAMES:
        return int(digits)
    raise FrameError(f"frames: step {digits} in {part!r} must be from 1 to {MAX_FRAMES:,}")


def _to_frame(digits: str, part: str) -> int:
    """A frame number within Blender's limits; huge digit strings never reach int()."""
    if len(digits.lstrip("-")) <= 8:
        frame = int(digits)
        if MIN_FRAME <= frame <= MAX_FRAME:
            return frame
    raise FrameError(
        f"frames: {digits} in {part!r} is out of range; Blender frames go from "
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
