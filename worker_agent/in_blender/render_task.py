"""TASK.json: what the agent asks the render runner to do, checked field by field.

Standard library only; imported by the agent (which writes the file) and by the
runner inside Blender (which reads it), so the schema lives in one place.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

DEVICES = ("CPU", "CUDA", "OPTIX", "HIP", "METAL", "ONEAPI")

# Blender's movie formats: one file per job, so they cannot be rendered in chunks.
MOVIE_FORMATS = ("FFMPEG", "AVI_JPEG", "AVI_RAW")


class TaskError(Exception):
    """The task cannot be rendered as asked; the message is for the artist."""

    job_fault = False  # see JobFault


class JobFault(TaskError):
    """The job's own doing, which every worker would meet alike (a file its project
    lacks, a scene or camera the .blend does not have): the error event says so,
    and the farm fails the task without trying it on other workers."""

    job_fault = True


@dataclasses.dataclass(frozen=True)
class RenderTask:
    """The TASK.json the agent writes and the runner reads (schema in one place)."""

    blend: str  # absolute path of the .blend (mode --bpy opens it; the binary checks it)
    frames: tuple[int, ...]  # frames to render, in this order
    output_dir: str  # absolute directory on the worker for the outputs
    output_name: str = ""  # basename pattern ("frame_####", ""); Blender's naming rules
    scene: str | None = None  # scene name; None = the file's active scene
    camera: str | None = None  # camera object name; None = the scene's camera
    file_format: str | None = None  # image format id ("PNG", "OPEN_EXR_MULTILAYER"); None = keep
    color_depth: str | None = None  # image_settings.color_depth ("8", "16"); None = keep
    use_file_extension: bool | None = None  # None = keep the scene's setting
    device: str | None = None  # one of DEVICES; None = keep the file's Cycles device
    threads: int | None = None  # render threads; None = Blender's automatic count
    samples: int | None = None  # total samples of the frame; None = keep the scene's
    sample_offset: int | None = None  # first sample of a sample range (progressive tasks)
    sample_count: int | None = None  # length of the sample range; None = no range
    seed: int | None = None  # Cycles seed; None = keep
    disable_denoise: bool = False  # turn Cycles denoising off
    disable_compositor: bool = False  # write the raw render, skip the compositor
    # With disable_denoise on a scene that denoises: store its denoising data passes
    # (albedo, normal), so that a later merge can denoise the summed samples.
    keep_denoising_data: bool = False
    region: tuple[float, float, float, float] | None = None  # border min_x, min_y, max_x, max_y
    crop_to_region: bool = False  # crop the image to the region
    allow_scripts: bool = False  # mode --bpy: auto-run scripts in the .blend (binary: -y/-Y)
    # Cycles keeps the scene's render data between the renders of one Blender (a warm
    # one's tasks); None = keep the file's setting.
    persistent_data: bool | None = None
    # A file the scene reads is not on disk: "fail" the task naming it, or "render"
    # anyway (inputs.py; the job's missing_files setting).
    missing_files: str = "fail"
    # The compositor File Output nodes the job brings home, in its order: (node name,
    # slot index or None) each (fileoutputs.py); every other File Output node is muted.
    file_outputs: tuple[tuple[str, int | None], ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["frames"] = list(self.frames)
        data["region"] = list(self.region) if self.region is not None else None
        data["file_outputs"] = [{"node": n, "slot": s} for n, s in self.file_outputs]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RenderTask:
        """Validate a decoded TASK.json; raises TaskError saying which field is wrong."""
        if not isinstance(data, dict):
            raise TaskError("task must be a JSON object")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise TaskError(f"unknown task field(s): {', '.join(unknown)}")
        for name in ("blend", "frames", "output_dir"):
            if name not in data:
                raise TaskError(f"task field {name!r} is required")
        values = {name: _check_field(name, value) for name, value in data.items()}
        task = cls(**values)
        task._check_consistency()
        return task

    def _check_consistency(self) -> None:
        if not self.frames:
            raise TaskError("task has no frames")
        for name in ("blend", "output_dir"):
            if not os.path.isabs(getattr(self, name)):
                raise TaskError(f"task field {name!r} must be an absolute path")
        if self.missing_files not in ("fail", "render"):
            raise TaskError(f"missing_files {self.missing_files!r} is not fail or render")
        if self.device is not None and self.device not in DEVICES:
            raise TaskError(f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.file_format in MOVIE_FORMATS:
            raise TaskError(f"movie format {self.file_format} cannot be rendered in chunks")
        if (self.sample_offset is None) != (self.sample_count is None):
            raise TaskError("sample_offset and sample_count go together")
        end = (self.sample_offset or 0) + (self.sample_count or 0)
        if self.sample_count is not None and self.samples is not None and end > self.samples:
            raise TaskError("sample range ends past the total samples")
        if self.region is not None:
            x0, y0, x1, y1 = self.region
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                raise TaskError(f"region {list(self.region)} is not inside 0..1")


# field name -> (accepted types, may be None, minimum for ints)
_FIELD_TYPES: dict[str, tuple[type | tuple[type, ...], bool, int | None]] = {
    "blend": (str, False, None),
    "output_dir": (str, False, None),
    "output_name": (str, False, None),
    "scene": (str, True, None),
    "camera": (str, True, None),
    "file_format": (str, True, None),
    "color_depth": (str, True, None),
    "use_file_extension": (bool, True, None),
    "device": (str, True, None),
    "threads": (int, True, 1),
    "samples": (int, True, 1),
    "sample_offset": (int, True, 0),
    "sample_count": (int, True, 1),
    "seed": (int, True, 0),
    "disable_denoise": (bool, False, None),
    "disable_compositor": (bool, False, None),
    "keep_denoising_data": (bool, False, None),
    "crop_to_region": (bool, False, None),
    "allow_scripts": (bool, False, None),
    "persistent_data": (bool, True, None),
    "missing_files": (str, False, None),
}


def _check_field(name: str, value: Any) -> Any:
    if name == "frames":
        if not isinstance(value, list) or not all(_is_int(v) for v in value):
            raise TaskError("task field 'frames' must be a list of integers")
        return tuple(value)
    if name == "region":
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 4 or not all(_is_number(v) for v in value):
            raise TaskError("task field 'region' must be [min_x, min_y, max_x, max_y] or null")
        return tuple(float(v) for v in value)
    if name == "file_outputs":
        from worker_agent.in_blender.fileoutputs import check_field

        return check_field(value)
    types, nullable, minimum = _FIELD_TYPES[name]
    if value is None and nullable:
        return None
    ok = _is_int(value) if types is int else isinstance(value, types)
    if not ok:
        raise TaskError(f"task field {name!r} has the wrong type: {value!r}")
    if minimum is not None and value < minimum:
        raise TaskError(f"task field {name!r} must be at least {minimum}, not {value}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_args(argv: Sequence[str]) -> tuple[bool, str]:
    """(module mode, task path) from sys.argv of either invocation."""
    if "--" in argv:  # binary: blender ... --python runner.py -- TASK.json
        rest = list(argv[argv.index("--") + 1 :])
        module_mode = False
    else:  # module: python runner.py --bpy TASK.json
        rest = list(argv[1:])
        module_mode = bool(rest) and rest[0] == "--bpy"
        rest = rest[1:] if module_mode else rest
        if not module_mode:
            raise TaskError("usage: python runner.py --bpy TASK.json, or blender ... -- TASK.json")
    if len(rest) != 1:
        raise TaskError(f"expected one TASK.json path, got {rest!r}")
    return module_mode, rest[0]


def load_task(path: str) -> RenderTask:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as ex:
        raise TaskError(f"cannot read task file {path}: {ex}") from ex
    return RenderTask.from_json(data)
