"""A `blender-render` job whose scene writes a movie: frames in chunks, then one encode.

A movie is one file, so no chunk can write it. Each render task writes its
frames as 16-bit PNGs (lossless, display-referred: the scene's view transform
and look are applied as they would be for the movie), declared intermediate
outputs the coordinator keeps and never delivers. One `encode` task, after
every chunk, fetches them and makes the movie in the worker's Blender with the
scene's own movie settings and sound (worker_agent/in_blender/encode.py); the
movie is the job's one delivered file, named as a local render names it
(core/movies.py).

The encode task names no frames, so a regenerate never keeps it: finished
chunks are kept (their payload names no movie setting) and the movie is made
again from them.
"""

from __future__ import annotations

from coordinator.core.frames import chunk_frames, format_frames, parse_frames
from coordinator.core.outputs import frame_path
from coordinator.core.protocol import TaskSpec
from coordinator.server.job_types.schema import JSON, SettingsError, check_task_count

# What the chunks write: never an artist's name (a movie's name has a frame range).
INTERMEDIATE_PATTERN = "farm_movie_frame_####"
INTERMEDIATE_FORMAT = "PNG"
INTERMEDIATE_DEPTH = "16"


def intermediate_name(frame: int) -> str:
    """The intermediate file a chunk writes for one frame of a movie job."""
    return frame_path(INTERMEDIATE_PATTERN, frame, file_format=INTERMEDIATE_FORMAT)


def movie_frames(text: str) -> list[int]:
    """The job's frames, which a movie needs consecutive and not negative."""
    frames = parse_frames(text)
    start, end = frames[0], frames[-1]
    if frames != list(range(start, end + 1)):
        raise SettingsError(
            "frames",
            f"a movie is made of consecutive frames, and {text!r} is not a range;"
            f" render {start}-{end} (a movie job takes one range, step 1), or render"
            " to an image format",
        )
    if start < 0:
        raise SettingsError("frames", "a movie starts at frame 0 or later, as in Blender")
    return frames


def compile(settings: JSON, common: JSON) -> list[TaskSpec]:
    """Render tasks (chunks of `settings`' frames, with `common` payload) and the encode."""
    frames = movie_frames(settings["frames"])
    chunks = chunk_frames(frames, settings["chunk_size"])
    check_task_count(len(chunks) + 1)
    tasks = [
        TaskSpec(
            name=f"frames {format_frames(chunk)}",
            kind="render",
            payload={
                **common,
                "frames": chunk,
                "output_name": INTERMEDIATE_PATTERN,
                "file_format": INTERMEDIATE_FORMAT,
                "color_depth": INTERMEDIATE_DEPTH,
                "use_file_extension": True,
                "intermediate_outputs": [intermediate_name(f) for f in chunk],
            },
            frames=tuple(chunk),
        )
        for chunk in chunks
    ]
    tasks.append(encode_task(settings, common, frames, depends_on=tuple(range(len(chunks)))))
    return tasks


def encode_task(
    settings: JSON, common: JSON, frames: list[int], *, depends_on: tuple[int, ...]
) -> TaskSpec:
    """The one task that makes the movie from the chunks' frames."""
    start, end = frames[0], frames[-1]
    return TaskSpec(
        name=f"encode movie {start}-{end}",
        kind="encode",
        payload={
            "scene": common["scene"],
            "output_name": common["output_name"],
            "file_format": settings["file_format"],
            "use_file_extension": settings["use_file_extension"],
            "frame_start": start,
            "frame_end": end,
            "inputs": [intermediate_name(f) for f in frames],
            "missing_files": settings["missing_files"],
        },
        depends_on=depends_on,
    )
