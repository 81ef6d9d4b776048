"""Compositor File Output nodes on the farm: what each writes, under which name it
travels, and where it lands. No `bpy`, standard library only.

A File Output node writes one file per frame for each linked slot (one for the
whole node when its format is multilayer EXR). On the artist's machine Blender
names that file from the node's folder and the slot's path
(`BKE_image_path_from_imformat` after `BLI_path_join`, the rule of
`core.outputs.frame_path`). The submitter resolves each slot's path there, as
the artist's own Blender would, and sends it in the job's `file_outputs`
setting; the worker rewrites the node to write into its task folder under a
name the farm chooses (`farm_pattern`), so a submitted file can never make a
worker write anywhere else; the coordinator, the add-on's sync and the pull
turn the farm's name back into the submitted destination.

Checked against Blender 3.4 (`base_path` + `file_slots[i].path`) and bpy 5.0.1
(`directory` + `file_name` + `file_output_items[i].name`) in
tests/e2e/test_file_outputs.py and tests/worker_agent/test_file_output_nodes.py.
"""

from __future__ import annotations

import json
import ntpath
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordinator.core.names import UnsafeNameError, check_name_pattern, check_plain_name, inside
from coordinator.core.outputs import (
    TemplateError,
    expand_path_template,
    frame_path,
    is_movie_format,
    local_output_folder,
    resolve_blender_relative,
)

# More slots than any scene sets up by hand: a job description stays small.
MAX_FILE_OUTPUTS = 64
MAX_NODE_NAME = 1024
MULTILAYER = "OPEN_EXR_MULTILAYER"

# The farm's name of stream k's frames: "fileout1-0001.png" ... (a plain name
# that no Blender rule changes; "#" padded to 4 like a frame without "#").
_FARM_NAME = re.compile(r"fileout(?P<number>[1-9][0-9]{0,2})-")


class FileOutputError(ValueError):
    """A File Output description that cannot be used; says which and why."""


@dataclass(frozen=True)
class FileOutput:
    """One file per frame that a File Output node writes."""

    node: str  # the node's name in the rendered scene's compositor (top level)
    slot: int | None  # index of its slot (5.0: item); None: a multilayer EXR, one file
    file_format: str  # the slot's image format id (the node's unless the slot overrides)
    path: str  # absolute destination pattern on the artist's machine, before numbering
    codec: str = "JP2"  # JPEG 2000's codec (it picks the extension)

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "slot": self.slot,
            "file_format": self.file_format,
            "path": self.path,
            "codec": self.codec,
        }


def farm_pattern(index: int) -> str:
    """The name pattern the worker's Blender writes stream `index` (0-based) to."""
    return f"fileout{index + 1}-####"


def farm_name(index: int, output: FileOutput, frame: int, *, use_file_extension: bool) -> str:
    """The name under which stream `index` of a job travels for `frame`."""
    return frame_path(
        farm_pattern(index),
        frame,
        file_format=output.file_format,
        use_file_extension=use_file_extension,
        jpeg2k_codec=output.codec,
    )


# Names a worker's Blender gives File Output files in the task folder: listed
# streams ("fileout1-") and the slots nobody uploads ("unlisted1-").
_RESERVED = re.compile(r"(?:fileout|unlisted)[0-9]+-", re.IGNORECASE)


def reserved_name_problem(name: str) -> str | None:
    """Why a render's output file name cannot be used, None when it can: a name
    starting like a File Output file's farm name ("fileout1-", "unlisted1-")
    would be taken for one (or overwritten by one) in the task folder."""
    match = _RESERVED.match(name)
    if match:
        return (
            f"output file names starting with {match[0]!r} are the farm's"
            " names for compositor File Output files; give the frames another name,"
            " e.g. frame_####"
        )
    return None


def farm_index(name: str) -> int | None:
    """The stream a farm name belongs to (0-based), None for a render's frame."""
    match = _FARM_NAME.match(name)
    return int(match["number"]) - 1 if match else None


def destination(output: FileOutput, frame: int, *, use_file_extension: bool) -> str:
    """The path the artist's Blender writes this stream's `frame` to (absolute)."""
    return frame_path(
        output.path,
        frame,
        file_format=output.file_format,
        use_file_extension=use_file_extension,
        jpeg2k_codec=output.codec,
    )


def destination_of(
    outputs: Sequence[FileOutput], name: str, frame: int | None, *, use_file_extension: bool
) -> str | None:
    """Where an output the farm named `name` lands: None when it is no File Output
    file of these (a frame of the render); FileOutputError when it claims to be
    one but is not exactly a name its stream gives `frame` (with or without the
    format's extension: the same file, landing as `use_file_extension` says)."""
    index = farm_index(name)
    if index is None:
        return None
    if index >= len(outputs) or frame is None:
        raise FileOutputError(f"{name!r} is no File Output file of this job")
    output = outputs[index]
    # The farm name has the extension the worker's scene gave it: a movie job's
    # chunks always add one (job_types/movie.py), whatever the job says; where the
    # file lands follows the job's own setting, as the artist's Blender names it.
    named = {farm_name(index, output, frame, use_file_extension=ext) for ext in (True, False)}
    if name not in named:
        raise FileOutputError(f"{name!r} is not the name of frame {frame} of {output.node!r}")
    return destination(output, frame, use_file_extension=use_file_extension)


def local_destination(
    submitted: str, name: Any, frame: Any, *, use_file_extension: bool
) -> Path | None:
    """Where a receiver on the artist's machine (the add-on's sync, the pull) writes
    the farm's output `name`: None for a frame of the render (its own rule), else
    the destination of the artist's own submission (`submitted`: the job's
    `file_outputs` as this machine sent it, never as a reply names it).

    UnsafeNameError when the name claims to be a File Output file the submission
    did not list, or the destination is no path of this machine, or a link there
    leads elsewhere.
    """
    if not isinstance(name, str) or farm_index(name) is None:
        return None
    number = frame if isinstance(frame, int) and not isinstance(frame, bool) else None
    try:
        outputs = parse_setting(submitted)
        dest = destination_of(outputs, name, number, use_file_extension=use_file_extension)
    except FileOutputError as ex:
        raise UnsafeNameError(f"file name from the farm {name!r} is refused: {ex}") from ex
    assert dest is not None  # a farm name
    folder = local_output_folder(dest)
    if folder is None:
        raise UnsafeNameError(f"{dest!r}, where {name!r} belongs, is no path of this machine")
    plain = check_plain_name(dest.replace("\\", "/").rsplit("/", 1)[-1], what="file name")
    inside(folder, plain)  # a link planted there must not lead out of the folder
    return Path(folder) / plain


# ------------------------------------------------------------ from the submitter


def join_slot_path(folder: str, name: str) -> str:
    """BLI_path_join(folder, name) as the File Output node calls it: one separator
    between, none added when either side is empty or the folder ends in one."""
    if not folder or not name:
        return folder + name
    if folder.endswith(("/", "\\")):
        return folder + name
    return folder + "/" + name


def resolve_nodes(
    raw: Sequence[Mapping[str, Any]],
    blend_path: str,
    *,
    variables: Mapping[str, str | int | float] | None = None,
) -> list[FileOutput]:
    """The File Outputs of the nodes a submitter read from Blender (see
    flamenco_addon/fileoutput_nodes.py), with paths resolved as the artist's
    Blender resolves them; FileOutputError saying which node cannot be used."""
    blend_dir = (ntpath if ntpath.splitdrive(blend_path)[0] else posixpath).dirname(blend_path)
    found: list[FileOutput] = []
    for item in raw:
        where = f"File Output node {item.get('node')!r}"
        if item.get("slot") is not None:
            where += f", input {item.get('label') or item['slot']!r}"
        path = join_slot_path(str(item.get("directory") or ""), str(item.get("name") or ""))
        try:
            if variables is not None:
                path = expand_path_template(path, variables)
            if path.startswith("//") and not blend_dir:
                raise FileOutputError("its path is relative to the .blend: save the file first")
            path = resolve_blender_relative(path, blend_dir or "/")
        except (TemplateError, ValueError) as ex:
            raise FileOutputError(f"{where}: {ex}") from ex
        output = {**item, "path": path}
        found.append(check_output(output, where=where))
    if len(found) > MAX_FILE_OUTPUTS:
        raise FileOutputError(
            f"the scene's File Output nodes write {len(found)} files per frame; the farm takes"
            f" at most {MAX_FILE_OUTPUTS}"
        )
    return found


# ------------------------------------------------------------ the job setting


def parse_setting(text: str) -> list[FileOutput]:
    """The job's `file_outputs` setting (JSON text, "" for none), checked."""
    if not text.strip():
        return []
    try:
        value = json.loads(text)
    except ValueError as ex:
        raise FileOutputError(f"not JSON: {ex}") from ex
    if not isinstance(value, list):
        raise FileOutputError("expected a JSON list of File Output descriptions")
    if len(value) > MAX_FILE_OUTPUTS:
        raise FileOutputError(f"{len(value)} File Output files; at most {MAX_FILE_OUTPUTS}")
    return [check_output(item, where=f"file output {i + 1}") for i, item in enumerate(value)]


def setting_text(outputs: Sequence[FileOutput]) -> str:
    """The `file_outputs` setting for these outputs ("" when there are none)."""
    return json.dumps([o.to_json() for o in outputs]) if outputs else ""


def check_output(item: Any, *, where: str) -> FileOutput:
    """One description, checked: a destination the artist's Blender could write."""
    if not isinstance(item, Mapping):
        raise FileOutputError(f"{where}: expected an object")
    node, slot, fmt = item.get("node"), item.get("slot"), item.get("file_format")
    path, codec = item.get("path"), item.get("codec") or "JP2"
    if not isinstance(node, str) or not node or len(node) > MAX_NODE_NAME:
        raise FileOutputError(f"{where}: 'node' must be a node name")
    if slot is not None and (isinstance(slot, bool) or not isinstance(slot, int) or slot < 0):
        raise FileOutputError(f"{where}: 'slot' must be a slot index or null")
    if not isinstance(fmt, str) or (fmt == MULTILAYER) != (slot is None):
        raise FileOutputError(
            f"{where}: 'file_format' must be an image format; {MULTILAYER} exactly when"
            " 'slot' is null (one file for the whole node)"
        )
    try:
        movie = is_movie_format(fmt)
    except ValueError as ex:
        raise FileOutputError(f"{where}: {ex}") from ex
    if movie:
        raise FileOutputError(f"{where}: it writes a movie ({fmt}), which cannot be split")
    if codec not in ("JP2", "J2K"):
        raise FileOutputError(f"{where}: 'codec' must be JP2 or J2K")
    output = FileOutput(node, slot, fmt, _check_path(path, where), codec)
    frame_path(output.path, 1, file_format=fmt, jpeg2k_codec=codec)  # names a frame
    return output


def _check_path(path: Any, where: str) -> str:
    """An absolute, normalised path whose file name is a plain name pattern."""
    if not isinstance(path, str) or not path or "\x00" in path or len(path) > 4096:
        raise FileOutputError(f"{where}: 'path' must be an absolute path")
    flavour = ntpath if ntpath.splitdrive(path)[0] else posixpath
    if path.startswith("//") or not flavour.isabs(path):
        raise FileOutputError(
            f"{where}: 'path' {path!r} is not absolute; resolve it where the .blend is"
        )
    parts = re.split(r"[\\/]", path)
    if any(part in (".", "..") for part in parts):
        raise FileOutputError(f"{where}: 'path' {path!r} has a '.' or '..' part")
    try:
        check_name_pattern(parts[-1], what=f"{where}: the file name of")
    except UnsafeNameError as ex:
        raise FileOutputError(str(ex)) from ex
    return path
