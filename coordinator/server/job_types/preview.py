"""The preview of an image-sequence job: a small WebM a worker's Blender makes last.

On by default; the job setting `preview: false` leaves it out. One `preview`
task depends on the tasks that write the finished frames (blender-render:
every render task; blender-render-progressive: each frame's last merge, and
only for more than one frame, since a still shows best as itself). It fetches
the finished frames (their outputs, the task's inputs) and encodes at most
MAX_FRAMES of them, evenly spaced, at the scene's frame rate and at most
MAX_WIDTH pixels wide, as VP9 in WebM, which browsers play (checked in
Debian's Chromium, tests/browser/test_preview_video.py). The file is an
intermediate output: kept on the farm, never delivered into the artist's
folder, served by `GET /jobs/{id}/preview`.

A preview is a convenience: a worker that cannot make one completes the task
without it (the log says why), so it never fails the job. It names no frames,
so a regenerate makes it again.
"""

from __future__ import annotations

from dataclasses import replace

from coordinator.core.protocol import TaskSpec
from coordinator.server.job_types.schema import JSON, Setting

PREVIEW_NAME = "farm_preview.webm"  # Blender keeps a name ending in the container's extension
MAX_FRAMES = 250  # ten seconds at 25 fps: a quick look, not the whole render fetched again
MAX_WIDTH = 640  # pixels; larger renders are scaled down, keeping their aspect


# On unless the job says otherwise (the add-on's form and the dashboard draw it;
# CLI: --set preview=false).
# A job of one frame gets no preview: the frame is its own.
SETTING = Setting(
    "preview",
    "bool",
    "Preview video",
    "After the frames of a job of more than one frame, a worker makes a small WebM of them"
    " (at most 640 pixels wide, 250 frames) to watch on the dashboard; kept on the farm,"
    " never delivered",
    default=True,
)
# The same setting for progressive jobs, whose preview waits for the last merges.
PROGRESSIVE_SETTING = replace(
    SETTING,
    description="After the last merge of a job of more than one frame, a worker makes a small"
    " WebM of the finished frames (at most 640 pixels wide, 250 frames) to watch on the"
    " dashboard; kept on the farm, never delivered",
)


def preview_frames(frames: list[int]) -> list[int]:
    """At most MAX_FRAMES of `frames`, evenly spaced, the first and last included."""
    if len(frames) <= MAX_FRAMES:
        return list(frames)
    last = len(frames) - 1
    return [frames[round(i * last / (MAX_FRAMES - 1))] for i in range(MAX_FRAMES)]


def preview_task(common: JSON, frames: list[int], *, depends_on: tuple[int, ...]) -> TaskSpec:
    """The task that makes the job's preview from the frames the render tasks deliver."""
    return TaskSpec(
        name="preview video",
        kind="preview",
        payload={
            "scene": common["scene"],
            "output_name": common["output_name"],
            "file_format": common["file_format"],
            "use_file_extension": common["use_file_extension"],
            "source_frames": preview_frames(frames),
            "preview_name": PREVIEW_NAME,
            "max_width": MAX_WIDTH,
            "intermediate_outputs": [PREVIEW_NAME],
        },
        depends_on=depends_on,
    )
