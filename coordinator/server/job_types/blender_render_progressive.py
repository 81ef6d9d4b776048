"""`blender-render-progressive`: each frame's Cycles samples split over many machines.

Every frame is rendered in sample chunks (sample ranges of the same seed) by
`render` tasks, and a chain of `merge` tasks per frame adds one chunk at a
time: merge k takes the merged EXR of merge k-1 and chunk k, so after each
merge the output folder holds that frame with more samples, replaced in place.
Task priorities put every frame's chunk k before any frame's chunk k+1, so the
whole sequence sharpens together. See docs/progressive.md.

Chunk EXRs and merged EXRs are intermediate outputs (`intermediate_outputs` in
a task's payload): the coordinator keeps them for the merges and never
delivers them into the artist's folder; only the finished-format frames are.
A job of more than one frame ends with a `preview` task (preview.py) that
depends on each frame's last merge.
"""

from __future__ import annotations

import re

from coordinator.core.frames import chunk_frames, format_frames, parse_frames
from coordinator.core.outputs import frame_path, is_movie_format
from coordinator.core.protocol import TaskSpec
from coordinator.server.job_types import preview
from coordinator.server.job_types.blender_render import (
    _check_frames,
    output_settings,
)
from coordinator.server.job_types.schema import JSON, Setting, SettingsError, check_task_count

NAME = "blender-render-progressive"
LABEL = "Render frames progressively (sample chunks)"
DESCRIPTION = (
    "Splits each frame's Cycles samples into chunks that many workers render at once, and"
    " merges them: the output folder holds every frame after the first chunk, getting"
    " cleaner with each merge. For a few long frames; for many frames use frame chunks."
)
NEEDS_BLEND = True

# Chunks are always written as multilayer EXR with this name (Blender's naming
# rules, like any frame); merges write "<frame>.s0000-<end>.exr" themselves.
CHUNK_PATTERN = "frame_####.s{start:04d}-{end:04d}"
CHUNK_FORMAT = "OPEN_EXR_MULTILAYER"
# What an artist's output name must not look like, or a final frame would
# replace an intermediate file of the same name.
_INTERNAL_NAME = re.compile(r"frame_-?\d+\.s\d+-\d+(\.exr)?", re.IGNORECASE)

MAX_SAMPLES = 1 << 24  # Cycles' own limit on samples


SCHEMA = (
    Setting(
        "frames",
        "str",
        "Frames",
        "Frames to render, as in Blender: 1-100,120,130-140",
        required=True,
        check=_check_frames,
    ),
    Setting(
        "samples",
        "int",
        "Samples",
        "Samples per frame in all (the scene's Render > Sampling > Max Samples)",
        required=True,
        minimum=1,
        maximum=MAX_SAMPLES,
    ),
    Setting(
        "chunks",
        "int",
        "Sample chunks",
        "Split each frame's samples into this many equal chunks; each is one task",
        default=4,
        minimum=1,
        maximum=1024,
    ),
    Setting(
        "chunk_samples",
        "int",
        "Samples per chunk",
        "Instead of a number of chunks: samples per chunk (the last one may be shorter)",
        default=None,
        minimum=1,
        maximum=MAX_SAMPLES,
    ),
    Setting(
        "frames_per_task",
        "int",
        "Frames per task",
        "Frames each render task renders one chunk of (one Blender start per task)",
        default=1,
        minimum=1,
        maximum=10_000,
    ),
    preview.PROGRESSIVE_SETTING,
    *output_settings(
        format_help="Format of the finished frames; unset keeps the scene's",
        overwrite_help="Replace frames already in the output folder (frames this job wrote"
        " itself are always refined in place)",
    ),
)


def sample_ranges(samples: int, chunks: int, chunk_samples: int | None) -> list[tuple[int, int]]:
    """[(first sample, end)] covering 0..samples: `chunks` equal parts, or parts of
    `chunk_samples`. Equal parts differ by one sample at most when they cannot be equal."""
    if chunk_samples is not None:
        return [(a, min(a + chunk_samples, samples)) for a in range(0, samples, chunk_samples)]
    if chunks > samples:
        raise ValueError(
            f"{chunks} chunks of {samples} samples would leave chunks without samples;"
            f" use at most {samples} chunks"
        )
    base, extra = divmod(samples, chunks)
    out, start = [], 0
    for k in range(chunks):
        end = start + base + (1 if k < extra else 0)
        out.append((start, end))
        start = end
    return out


def chunk_name(frame: int, start: int, end: int) -> str:
    """The file a chunk task writes for one frame (Blender names it from CHUNK_PATTERN)."""
    pattern = CHUNK_PATTERN.format(start=start, end=end)
    return frame_path(pattern, frame, file_format=CHUNK_FORMAT)


def merged_name(frame: int, end: int) -> str:
    """The merged EXR holding samples 0..end of a frame."""
    return chunk_name(frame, 0, end)


def _check_names(output_name: str, frames: list[int]) -> None:
    for frame in frames[:1]:  # the rule is about the name, not the number
        name = frame_path(output_name or "#", frame, file_format="PNG", use_file_extension=False)
        if _INTERNAL_NAME.fullmatch(name):
            raise ValueError(
                f"output name {output_name!r} looks like the farm's own chunk files"
                " (frame_0001.s0000-0004.exr); choose another name"
            )


def compile(settings: JSON) -> list[TaskSpec]:
    if settings["file_format"] and is_movie_format(settings["file_format"]):
        raise SettingsError(
            "file_format",
            f"{settings['file_format']} is a movie format: progressive rendering refines"
            " frames in place; render the movie with blender-render",
        )
    frames = parse_frames(settings["frames"])
    if settings["chunk_samples"]:  # 16M samples of 1 would be 16M ranges: count first
        check_task_count(2 * -(-settings["samples"] // settings["chunk_samples"]))
    try:
        ranges = sample_ranges(settings["samples"], settings["chunks"], settings["chunk_samples"])
    except ValueError as ex:
        raise SettingsError("chunks", str(ex)) from ex
    output_name = settings["output"].replace("\\", "/").rsplit("/", 1)[-1]
    try:
        _check_names(output_name, frames)
    except ValueError as ex:
        raise SettingsError("output", str(ex)) from ex
    # a render and a merge task per group of frames and sample chunk
    check_task_count(2 * len(ranges) * -(-len(frames) // settings["frames_per_task"]))
    groups = chunk_frames(frames, settings["frames_per_task"])
    tasks: list[TaskSpec] = []
    first_chunk: list[int] = []  # per group: the index of its first chunk's task
    merge: list[int] = []  # per group: the index of its merge task at the previous level
    for level, (start, end) in enumerate(ranges):
        # Every frame's chunk k outranks every chunk k+1; a merge outranks the
        # chunks of its own level, so previews appear as soon as they can.
        priority = 2 * (len(ranges) - level)
        chunk = []
        for group in groups:
            chunk.append(len(tasks))
            tasks.append(_chunk_task(settings, group, start, end, priority))
        first_chunk = first_chunk or chunk
        for g, group in enumerate(groups):
            # Merge k adds chunk k to what merge k-1 left; merge 1 reads chunk 0's
            # files themselves (merge 0 only finished them), so it depends on them too.
            deps = (chunk[g],) + ((merge[g],) if level else ())
            if level == 1:
                deps += (first_chunk[g],)
            tasks.append(_merge_task(settings, output_name, group, ranges, level, deps))
        merge = [len(tasks) - len(groups) + g for g in range(len(groups))]
    if settings["preview"] and len(frames) > 1:
        # then a small preview movie of the finished frames, which the last merges write
        tasks.append(
            preview.preview_task(
                _preview_common(settings, output_name), frames, depends_on=tuple(merge)
            )
        )
    return tasks


def _preview_common(settings: JSON, output_name: str) -> JSON:
    """How the finished frames are named, for the preview task to find them."""
    return {
        "scene": settings["scene"],
        "output_name": output_name,
        "file_format": settings["file_format"],
        "use_file_extension": settings["use_file_extension"],
    }


def _chunk_task(settings: JSON, frames: list[int], start: int, end: int, priority: int) -> TaskSpec:
    """Render samples start..end of `frames` to multilayer EXRs, for merging only."""
    payload = {
        "scene": settings["scene"],
        "camera": settings["camera"],
        "frames": frames,
        "output_name": CHUNK_PATTERN.format(start=start, end=end),
        "file_format": CHUNK_FORMAT,
        "use_file_extension": True,
        "samples": settings["samples"],
        "sample_offset": start,
        "sample_count": end - start,
        "disable_denoise": True,
        "disable_compositor": True,
        "keep_denoising_data": True,
        "intermediate_outputs": [chunk_name(f, start, end) for f in frames],
        "missing_files": settings["missing_files"],
    }
    return TaskSpec(
        name=f"frames {format_frames(frames)} samples {start + 1}-{end}",
        kind="render",
        payload=payload,
        priority=priority,
        frames=tuple(frames),
    )


def _merge_task(
    settings: JSON,
    output_name: str,
    frames: list[int],
    ranges: list[tuple[int, int]],
    level: int,
    deps: tuple[int, ...],
) -> TaskSpec:
    """Add chunk `level` to each frame's merged samples and write the frames finished."""
    start, end = ranges[level]
    merges = []
    for frame in frames:
        if level == 0:  # the first chunk alone is the first preview: nothing to merge yet
            inputs = [{"name": chunk_name(frame, start, end), "samples": end - start}]
            merged = None
        else:
            inputs = [
                {"name": merged_name(frame, start), "samples": start},
                {"name": chunk_name(frame, start, end), "samples": end - start},
            ]
            merged = merged_name(frame, end)
        merges.append({"frame": frame, "inputs": inputs, "merged_output": merged})
    payload = {
        "scene": settings["scene"],
        "camera": settings["camera"],
        "merges": merges,
        "output_name": output_name,
        "file_format": settings["file_format"],
        "use_file_extension": settings["use_file_extension"],
        "samples": settings["samples"],
        "sample_end": end,
        "intermediate_outputs": [m["merged_output"] for m in merges if m["merged_output"]],
    }
    verb = "merge" if level else "finish"
    return TaskSpec(
        name=f"frames {format_frames(frames)} {verb} samples 1-{end}",
        kind="merge",
        payload=payload,
        priority=2 * (len(ranges) - level) + 1,
        depends_on=deps,
        frames=tuple(frames),
    )


def report(tasks: list[JSON]) -> JSON:
    """Samples reached per frame: the end of each frame's last completed merge.

    `tasks`: the job's tasks with their kind, status and payload.
    """
    total = 0
    reached: dict[str, int] = {}
    for task in tasks:
        payload = task["payload"] or {}
        if task["kind"] != "merge":
            continue
        total = max(total, int(payload.get("samples", 0)))
        done = int(payload.get("sample_end", 0)) if task["status"] == "completed" else 0
        for frame in task["frames"] or ():
            reached[str(frame)] = max(reached.get(str(frame), 0), done)
    finished = sum(1 for n in reached.values() if total and n >= total)
    return {"samples": total, "frame_samples": reached, "frames_finished": finished}
