"""The `file_outputs` setting of the render job types: compositor File Output nodes.

The submitter (the add-on, or the CLI's trace in a headless Blender) reads
each node on the artist's machine and sends, per file it writes every frame,
the node, the slot, the format and the destination resolved there
(`core.fileoutputs`). The tasks carry node, slot and format (the worker
rewrites those nodes into its task folder, under the farm's names); the
expected outputs of each task include those names, so a task completes only
once they arrived; delivery turns each back into the destination the
submission named. The map lives in the job's settings (JSON text, so the
settings schema and every form stay as they are).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coordinator.core.fileoutputs import (
    FileOutput,
    FileOutputError,
    check_output,
    destination_of,
    farm_name,
    parse_setting,
    setting_text,
)
from coordinator.core.names import name_problem
from coordinator.core.outputs import local_output_folder
from coordinator.server.filestore import output_folder
from coordinator.server.job_types.schema import JSON, Setting


def _check(text: str) -> str:
    return setting_text(parse_setting(text))  # FileOutputError is a ValueError


FILE_OUTPUTS = Setting(
    "file_outputs",
    "str",
    "File Output nodes",
    "The files the scene's compositor File Output nodes write each frame, as a JSON list"
    ' of {"node", "slot", "file_format", "path", "codec"} (path: absolute, resolved on the'
    " submitting machine); the add-on and the CLI fill it in. Empty: workers mute them",
    default="",
    max_length=262_144,
    check=_check,
)


def task_payload(settings: JSON) -> dict[str, Any]:
    """What a render task needs of the map: node, slot and format per file, in order
    (the destinations stay in the job's settings). Empty when the job has none."""
    outputs = parse_setting(settings.get("file_outputs") or "")
    if not outputs:
        return {}
    return {
        "file_outputs": [
            {"node": o.node, "slot": o.slot, "file_format": o.file_format, "codec": o.codec}
            for o in outputs
        ]
    }


def task_files(payload: dict[str, Any], frames: list[int]) -> list[tuple[str, ...]]:
    """The farm names a render task's File Output nodes give its frames (outputs.py)."""
    listed = payload.get("file_outputs") or ()
    if not listed:
        return []
    use_ext = bool(payload.get("use_file_extension", True))
    outputs = [_from_payload(item) for item in listed]
    return [
        (farm_name(index, output, frame, use_file_extension=use_ext),)
        for frame in frames
        for index, output in enumerate(outputs)
    ]


def _from_payload(item: dict[str, Any]) -> FileOutput:
    # The payload was compiled from a checked setting; the path is not needed here.
    return check_output({**item, "path": "/x"}, where="file output")


def delivery_target(settings: JSON, name: str, frame: int | None) -> Path | str:
    """Where an output of the job lands on this machine, or why it does not: a
    frame of the render in the folder of `output`, a File Output file at the
    destination the submission named for its node and frame."""
    pattern = str(settings.get("output") or "")
    try:
        outputs = parse_setting(settings.get("file_outputs") or "")
        use_ext = bool(settings.get("use_file_extension", True))
        dest = destination_of(outputs, name, frame, use_file_extension=use_ext)
    except FileOutputError as ex:
        return f"not delivered: {ex}"
    if dest is None:
        folder = output_folder(pattern)
        if folder is None:
            return f"{pattern!r} is not a folder on this machine; fetch the output from the farm"
        return folder / name
    here = local_output_folder(dest)
    if here is None:
        return f"{dest!r} is not a path on this machine; fetch the output from the farm"
    file_name = dest.replace("\\", "/").rsplit("/", 1)[-1]
    problem = name_problem(file_name)
    if problem is not None:
        return f"not delivered to {dest!r}: {problem}"
    return Path(here) / file_name


def destinations(settings: JSON) -> tuple[Any, ...]:
    """What decides where a job's outputs land: a change of it delivers them again."""
    keys = ("output", "file_outputs", "use_file_extension")
    return tuple(settings.get(key) for key in keys)
