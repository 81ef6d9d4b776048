"""Turns the lines a render prints into typed events. No bpy, no I/O.

The contract is the render runner's marker lines (see worker_agent/in_blender/runner.py):
``@@FARM@@ {"event": ...}``. Blender's own output is only log, except that
``parse_blender_progress`` reads sample progress from the classic stats line as
a fallback for a Blender run without the runner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coordinator.core.protocol import RUNNER_EVENT_PREFIX


@dataclass(frozen=True)
class Accepted:
    """A warm runner (in_blender/serve.py) read a task line and starts on it."""

    task: str  # the task file it was given


@dataclass(frozen=True)
class Ready:
    """The runner loaded the file and applied the task."""

    blender: str  # Blender's version, "3.4.1"
    scene: str  # the scene being rendered
    engine: str  # "CYCLES", "BLENDER_EEVEE", ...
    camera: str | None  # the camera object's name
    frames: tuple[int, ...]  # the frames it will render, in order
    output: str  # render.filepath as set for the task (may contain '#')
    file_format: str | None  # Blender's image format id
    samples: int | None  # total samples per frame, None when unknown (not Cycles)
    sample_offset: int | None  # first sample of a sample-range task
    sample_count: int | None  # length of a sample-range task
    device: str | None  # Cycles device ("CPU", "GPU"), None for other engines


@dataclass(frozen=True)
class FrameStart:
    frame: int  # the frame Blender starts rendering


@dataclass(frozen=True)
class Progress:
    frame: int  # the frame being rendered
    sample: int  # samples done (of this render, a sample range counts from 0)
    samples: int  # samples this render takes

    @property
    def fraction(self) -> float:
        return self.sample / self.samples if self.samples else 0.0


@dataclass(frozen=True)
class FrameSaved:
    frame: int  # the frame whose file is written
    path: str  # absolute path on the worker; the file exists


@dataclass(frozen=True)
class RunnerError:
    message: str  # what went wrong, for the task log and the artist
    traceback: str | None = None  # the runner's own traceback, when it crashed
    job_fault: bool = False  # the job's own doing: every worker would meet the same


@dataclass(frozen=True)
class Done:
    frames: tuple[int, ...]  # frames saved; the runner exits 0 after this


@dataclass(frozen=True)
class Malformed:
    """A marker line that is not a valid event: logged, never fatal on its own.

    Returned rather than None so the agent can log the runner bug; an agent
    that does not care treats it like plain output.
    """

    line: str  # the text after the marker
    reason: str  # why it did not parse


RunnerEvent = Accepted | Ready | FrameStart | Progress | FrameSaved | RunnerError | Done | Malformed


class _Bad(Exception):
    """A field is missing or has the wrong type."""


def parse_line(line: str) -> RunnerEvent | None:
    """The event on one output line; None for Blender's ordinary output.

    The marker may follow other text on the same line: Blender before 5.0 calls
    render_stats handlers before ending its own stats line with a newline.
    """
    index = line.find(RUNNER_EVENT_PREFIX)
    if index < 0:
        return None
    text = line[index + len(RUNNER_EVENT_PREFIX) :].rstrip("\r\n")
    try:
        data = json.loads(text)
    except ValueError as ex:
        return Malformed(text, f"not JSON: {ex}")
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        return Malformed(text, "not an object with an 'event' string")
    build = _BUILDERS.get(data["event"])
    if build is None:
        return Malformed(text, f"unknown event {data['event']!r}")
    try:
        return build(data)
    except _Bad as ex:
        return Malformed(text, str(ex))


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Bad(f"{key!r} must be an integer, got {value!r}")
    return value


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    return None if data.get(key) is None else _int(data, key)


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise _Bad(f"{key!r} must be a string, got {value!r}")
    return value


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else _str(data, key)


def _frames(data: dict[str, Any]) -> tuple[int, ...]:
    value = data.get("frames")
    if not isinstance(value, list):
        raise _Bad(f"'frames' must be a list, got {value!r}")
    return tuple(_int({"frame": v}, "frame") for v in value)


def _ready(data: dict[str, Any]) -> Ready:
    return Ready(
        blender=_str(data, "blender"),
        scene=_str(data, "scene"),
        engine=_str(data, "engine"),
        camera=_opt_str(data, "camera"),
        frames=_frames(data),
        output=_str(data, "output"),
        file_format=_opt_str(data, "file_format"),
        samples=_opt_int(data, "samples"),
        sample_offset=_opt_int(data, "sample_offset"),
        sample_count=_opt_int(data, "sample_count"),
        device=_opt_str(data, "device"),
    )


def _progress(data: dict[str, Any]) -> Progress:
    return Progress(
        frame=_int(data, "frame"), sample=_int(data, "sample"), samples=_int(data, "samples")
    )


_BUILDERS: dict[str, Callable[[dict[str, Any]], RunnerEvent]] = {
    "accepted": lambda d: Accepted(task=_str(d, "task")),
    "ready": _ready,
    "frame_start": lambda d: FrameStart(frame=_int(d, "frame")),
    "progress": _progress,
    "frame_saved": lambda d: FrameSaved(frame=_int(d, "frame"), path=_str(d, "path")),
    "error": lambda d: RunnerError(
        message=_str(d, "message"),
        traceback=_opt_str(d, "traceback"),
        job_fault=d.get("job_fault") is True,  # anything else: not the job's (as before)
    ),
    "done": lambda d: Done(frames=_frames(d)),
}


# ---------------------------------------------------------------- Blender's own lines

# "Fra:2 Mem:9.96M (Peak 10.16M) | Time:00:00.06 | Remaining:00:00.00 | Mem:0.80M,
# Peak:0.80M | Scene, ViewLayer | Sample 1/4": the stats line of background renders,
# 2.80-4.5 (verified on 3.4.1). 5.0 logs stats only at info level, in another format.
_STATS_LINE_RE = re.compile(r"^Fra:(-?\d+) Mem:")
_SAMPLE_RES = (
    # Cycles 3.0-4.5 "| Sample 1/4"; 2.9x "Path Tracing Sample 5/16" (verified on 3.4.1).
    re.compile(r"\bSample (\d+)/(\d+)"),
    # EEVEE Legacy 2.80-4.1 "| Rendering 51 / 64 samples" (verified on 3.4.1; EEVEE
    # Next, 4.2+, not checked).
    re.compile(r"\bRendering (\d+) / (\d+) samples"),
)


def parse_blender_progress(line: str) -> Progress | None:
    """Sample progress from Blender's classic stats line; None for any other line."""
    frame = _STATS_LINE_RE.match(line)
    if frame is None:
        return None
    for pattern in _SAMPLE_RES:
        matches = pattern.findall(line)
        if matches:
            sample, samples = matches[-1]  # the sample part comes last
            return Progress(frame=int(frame.group(1)), sample=int(sample), samples=int(samples))
    return None
