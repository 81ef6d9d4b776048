"""Render progress inside Blender: the stats text parser, its throttle, and the stdout tee.

Pure parts (parse_stats, ProgressThrottle) are fed real captured lines in the
tests; StdoutTee is how Blender before 5.0 lets the runner see its stats line.
Standard library only.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence

# "Fra:2 Mem:9.96M (Peak 10.16M) | Time:00:00.06 | Remaining:00:00.00 | Mem:0.80M, Peak:0.80M
#  | Scene, ViewLayer | Sample 1/4": the line 2.80-4.5 print to stdout for each stats
# update in background renders (verified on 3.4.1). 5.0 no longer prints it by default.
_FRAME_RE = re.compile(r"^Fra:(-?\d+) ")

_SAMPLE_RES = (
    # Cycles: "| Sample 1/4" at the end of the 2.80-4.5 stdout line above, and the
    # whole stats text 5.0 passes to render_stats: "Remaining: 00:00.00 | Mem: 2M |
    # Sample 1/4" (verified on 3.4.1 and 5.0.1). 2.9x also wrote "Path Tracing Sample 5/16".
    re.compile(r"\bSample (\d+)/(\d+)"),
    # EEVEE Legacy 2.80-4.1: "Fra:1 Mem:10.77M (Peak 11.85M) | Time:00:10.22 | Rendering
    # 51 / 64 samples" (verified on 3.4.1; EEVEE Next, 4.2+, not checked).
    re.compile(r"\bRendering (\d+) / (\d+) samples"),
)


@dataclasses.dataclass(frozen=True)
class StatsProgress:
    """Sample progress read from one stats text."""

    frame: int | None  # the frame the text names (only the 2.80-4.5 stdout line does)
    sample: int  # samples done
    samples: int  # samples this render takes


def parse_stats(text: str) -> StatsProgress | None:
    """Sample progress in a render stats text, None when the text has none."""
    for pattern in _SAMPLE_RES:
        matches = pattern.findall(text)
        if matches:
            sample, samples = matches[-1]  # the sample part comes last
            frame = _FRAME_RE.match(text)
            return StatsProgress(
                frame=int(frame.group(1)) if frame else None,
                sample=int(sample),
                samples=int(samples),
            )
    return None


class ProgressThrottle:
    """Decides which progress updates become events.

    Blender reports stats dozens of times per frame; the agent needs a few per
    second. An update passes when its sample differs from the last one sent for
    this frame and either min_interval has passed since that one or it is the
    last sample (so the agent always sees a frame reach 100 %).
    """

    def __init__(self, *, min_interval: float = 0.25, clock: Callable[[], float] = time.monotonic):
        self._min_interval = min_interval  # seconds between two events of one frame
        self._clock = clock
        self._frame: int | None = None  # frame of the last event sent
        self._sample: int | None = None  # sample of the last event sent
        self._sent_at = 0.0  # clock() when it was sent

    def offer(self, frame: int, sample: int, samples: int) -> bool:
        now = self._clock()
        new_frame = frame != self._frame
        too_soon = sample != samples and now - self._sent_at < self._min_interval
        if not new_frame and (sample == self._sample or too_soon):
            return False
        self._frame, self._sample, self._sent_at = frame, sample, now
        return True


class StdoutTee:
    """Routes file descriptor 1 through a pipe so the runner sees Blender's own lines.

    Before 5.0, render_stats handlers are called without the stats text; the
    sample count exists only in the line Blender prints to stdout (and the
    handler runs before that line's newline). A thread copies every line to the
    real stdout unchanged and writes the lines on_line returns right after it,
    so progress events land next to the stats line they come from.
    """

    def __init__(self, on_line: Callable[[str], Sequence[str]]):
        self._on_line = on_line  # gets each line, returns extra lines to print after it
        self._real_fd = -1  # duplicate of the original stdout
        self._read_fd = -1  # read end of the pipe now behind fd 1
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        sys.stdout.flush()
        self._real_fd = os.dup(1)
        self._read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 1)
        os.close(write_fd)
        self._thread = threading.Thread(target=self._pump, name="runner-stdout", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Puts the real stdout back after forwarding everything written so far."""
        if self._thread is None:
            return
        sys.stdout.flush()
        _flush_c_stdio()
        os.dup2(self._real_fd, 1)  # closes the pipe's last write end: the pump sees EOF
        self._thread.join(timeout=10)
        self._thread = None
        os.close(self._read_fd)
        os.close(self._real_fd)

    def _pump(self) -> None:
        pending = b""
        while chunk := os.read(self._read_fd, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                self._forward(raw + b"\n")
                try:
                    extra = self._on_line(raw.decode("utf-8", "replace"))
                except Exception:  # a parser bug must not stall Blender's output
                    extra = [f"runner: stats parser failed: {traceback.format_exc()}"]
                for line in extra:
                    self._forward(line.encode("utf-8") + b"\n")
        if pending:
            self._forward(pending)

    def _forward(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self._real_fd, data) :]
        except OSError:
            pass  # nobody reads our stdout any more; keep draining Blender's


def _flush_c_stdio() -> None:
    """Blender prints through C stdio, which buffers when stdout is a pipe."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (ImportError, OSError, AttributeError):
        pass
