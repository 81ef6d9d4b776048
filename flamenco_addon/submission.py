"""What a job is made of, from a snapshot of the scene. No `bpy` here.

The shell (operators.py) copies what it needs out of Blender into a
`SceneSnapshot` and a `JobForm`; everything below is plain data in, plain data
out, so it is tested without Blender.
"""

from __future__ import annotations

import getpass
import ipaddress
import ntpath
import os
import platform
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from coordinator.core.fileoutputs import (
    FileOutputError,
    reserved_name_problem,
    resolve_nodes,
    setting_text,
)
from coordinator.core.frames import FrameError, chunk_frames, format_frames, parse_frames
from coordinator.core.outputs import (
    TemplateError,
    expand_path_template,
    is_movie_format,
    output_folder,
    resolve_blender_relative,
)

JSON = dict[str, Any]

# Settings the add-on fills in from the scene, for every job type that renders
# (one whose schema has an "output"); the panel draws the job type's others.
SCENE_SETTINGS = frozenset(
    {
        *("frames", "chunk_size", "output", "file_format"),
        *("use_file_extension", "scene", "camera", "overwrite", "samples"),
        "file_outputs",
    }
)
# What blender-render takes from the scene, before its schema has been fetched.
_RENDER_SCENE_SETTINGS = SCENE_SETTINGS - {"samples"}
# Where each result of a remote render goes: "auto" picks by the coordinator's address.
RESULTS_MODES = ("auto", "coordinator", "download")

# Blender 5.0 lists multilayer EXR and video under image_settings.media_type;
# the farm speaks the classic file_format ids of 3.x-4.x.
_MEDIA_TYPE_FORMATS = {"MULTI_LAYER_IMAGE": "OPEN_EXR_MULTILAYER", "VIDEO": "FFMPEG"}


class SubmitError(Exception):
    """Something the artist must fix before submitting; the message says what."""


@dataclass(frozen=True)
class SceneSnapshot:
    """What the add-on reads from Blender for a job, copied out of bpy."""

    blend_path: str  # the artist's .blend, absolute; "" when never saved
    scene_name: str  # the scene to render
    camera: str | None  # the scene camera's object name
    frame_start: int  # scene range, the default frame list
    frame_end: int
    frame_step: int
    render_filepath: str  # scene.render.filepath as typed ("//render/frame_####")
    file_format: str  # image_settings.file_format
    media_type: str = ""  # image_settings.media_type (5.0+), "" before
    engine: str = "CYCLES"  # render.engine
    samples: int = 0  # Cycles' max samples; 0 for other engines
    use_file_extension: bool = True  # render.use_file_extension
    use_overwrite: bool = True  # render.use_overwrite
    blender_version: str = ""  # "5.0" of the submitting Blender
    # Values of render.filepath's "{name}" templates (Blender 4.5+); None: no templates
    path_variables: Mapping[str, str | int | float] | None = None
    # What the compositor's File Output nodes write per frame, as read from Blender
    # (fileoutput_nodes.py): paths as typed, resolved by file_output_setting()
    file_outputs: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class JobForm:
    """What the artist chose in the panel (or passed to the operator)."""

    job_type: str = "blender-render"  # a name from the coordinator's /job-types
    name: str = ""  # "" = the .blend's name
    frames: str = ""  # "" = the scene's range
    chunk_size: int = 4  # frames per task
    priority: int = 50  # 0-100
    extra: Mapping[str, Any] = field(default_factory=dict)  # schema-drawn settings
    # The job type's settings the scene fills in (scene_settings_of its schema);
    # None: schema not fetched yet, blender-render's are assumed for it.
    scene_settings: frozenset[str] | None = None
    # Only workers with all these tags, and offering these needs (requirements.py)
    requires_tags: tuple[str, ...] = ()
    needs: Mapping[str, Any] = field(default_factory=dict)


def scene_settings_of(job_type: Mapping[str, Any]) -> frozenset[str]:
    """The settings of a job type (as GET /job-types lists it) that come from the scene."""
    names = {s["name"] for s in job_type.get("settings", [])}
    return frozenset(names & SCENE_SETTINGS) if "output" in names else frozenset()


def default_frames(snap: SceneSnapshot) -> str:
    """The scene's range as a frame list ("1-250", or "1-9x2" with a frame step)."""
    if snap.frame_end < snap.frame_start:
        raise SubmitError(
            f"the scene's frame range {snap.frame_start}-{snap.frame_end} is empty:"
            " nothing to render"
        )
    if snap.frame_step > 1 and snap.frame_end > snap.frame_start:
        return f"{snap.frame_start}-{snap.frame_end}x{snap.frame_step}"
    frames = range(snap.frame_start, snap.frame_end + 1)
    return format_frames(frames)


def classic_file_format(file_format: str, media_type: str = "") -> str:
    """The file_format id the farm knows, whatever Blender 5.0's media type says."""
    return _MEDIA_TYPE_FORMATS.get(media_type, file_format)


def resolve_output(snap: SceneSnapshot) -> str:
    """render.filepath made absolute as Blender would, or a SubmitError saying why not."""
    path = snap.render_filepath.strip()
    if not path:
        raise SubmitError("the output path (Output Properties > Output) is empty")
    if snap.path_variables is not None:
        try:
            path = expand_path_template(path, snap.path_variables)
        except TemplateError as ex:
            raise SubmitError(f"the output path has a template Blender can't use: {ex}") from ex
    if path.startswith("//") and not snap.blend_path:
        raise SubmitError(
            f"the output path {path!r} is relative to the .blend file: save the file first"
        )
    try:
        resolved = resolve_blender_relative(path, _dirname(snap.blend_path or "/"))
    except ValueError as ex:
        raise SubmitError(f"the output path can't be used: {ex}") from ex
    problem = reserved_name_problem(resolved.replace("\\", "/").rsplit("/", 1)[-1])
    if problem is not None:  # refused before the file is packed, not by the farm after
        raise SubmitError(f"the output path can't be used: {problem}")
    return resolved  # ending in a separator: a folder, frames named 0001.png ...


def check_format(snap: SceneSnapshot) -> str:
    fmt = classic_file_format(snap.file_format, snap.media_type)
    try:
        is_movie_format(fmt)  # a movie renders in frame chunks, then one task encodes it
    except ValueError as ex:
        raise SubmitError(f"the farm does not know the file format {fmt!r}") from ex
    return fmt


def file_output_setting(snap: SceneSnapshot) -> str:
    """The job's `file_outputs`: each File Output file with its destination resolved
    here, as the artist's Blender resolves it ("" when the scene has none)."""
    try:
        found = resolve_nodes(snap.file_outputs, snap.blend_path, variables=snap.path_variables)
    except FileOutputError as ex:
        raise SubmitError(f"the compositor's {ex}") from ex
    return setting_text(found)


def check_frames(text: str, chunk_size: int) -> str:
    try:
        frames = parse_frames(text)
        chunk_frames(frames, chunk_size)
    except FrameError as ex:
        raise SubmitError(str(ex)) from ex
    return text.strip()


def job_settings(snap: SceneSnapshot, form: JobForm) -> JSON:
    """The job's settings: those the job type takes from the scene, plus the drawn extras."""
    filled = form.scene_settings
    if filled is None:
        filled = _RENDER_SCENE_SETTINGS if form.job_type == "blender-render" else frozenset()
    if not filled:
        return dict(form.extra)
    if "camera" in filled and not snap.camera and not form.extra.get("camera"):
        raise SubmitError("the scene has no active camera: nothing to render")
    scene: JSON = {
        "scene": snap.scene_name,
        "camera": snap.camera,
        "use_file_extension": snap.use_file_extension,
        "overwrite": snap.use_overwrite,
        "chunk_size": form.chunk_size,
    }
    if "frames" in filled:
        chunk = form.chunk_size if "chunk_size" in filled else 1
        scene["frames"] = check_frames(form.frames or default_frames(snap), chunk)
    if "output" in filled:
        scene["output"] = resolve_output(snap)
    if "file_format" in filled:
        scene["file_format"] = check_format(snap)
    if "file_outputs" in filled and snap.file_outputs:
        scene["file_outputs"] = file_output_setting(snap)
    if "samples" in filled:
        if snap.engine != "CYCLES" or snap.samples < 1:
            raise SubmitError(
                f"rendering in sample ranges needs Cycles; this scene renders with {snap.engine}"
            )
        scene["samples"] = snap.samples
    settings: JSON = {k: v for k, v in scene.items() if k in filled}
    settings.update({k: v for k, v in form.extra.items() if k not in filled})
    return settings


def job_name(snap: SceneSnapshot, form: JobForm) -> str:
    if form.name.strip():
        return form.name.strip()
    stem = _basename(snap.blend_path).rsplit(".", 1)[0] or "untitled"
    return f"{stem} - {snap.scene_name}" if snap.scene_name != "Scene" else stem


def submitter() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name on some Windows setups
        user = "artist"
    return f"{user}@{platform.node() or 'blender'}"


def is_local_url(url: str) -> bool:
    """Whether the coordinator runs on this computer (loopback or one of our names)."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", platform.node().lower()):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def coordinator_delivers(url: str, mode: str = "auto") -> bool:
    """deliver=true when the coordinator can write into the artist's folder itself."""
    if mode not in RESULTS_MODES:
        raise SubmitError(f"results must be one of {', '.join(RESULTS_MODES)}, not {mode!r}")
    if mode == "auto":
        return is_local_url(url)
    return mode == "coordinator"


def job_body(
    snap: SceneSnapshot,
    form: JobForm,
    *,
    files: Mapping[str, str],
    blend: str | None,
    deliver: bool,
    origin: str = "",
) -> JSON:
    """The POST /jobs body; `origin` (origins.origin_of) lists it under "This file"."""
    if not 0 <= form.priority <= 100:
        raise SubmitError(f"priority {form.priority} must be from 0 to 100")
    return {
        "name": job_name(snap, form),
        "type": form.job_type,
        "priority": form.priority,
        "settings": job_settings(snap, form),
        "files": dict(files),
        "blend": blend,
        "blender_version": snap.blender_version or None,
        "submitter": submitter(),
        "deliver": deliver,
        "origin": origin,
        "requires_tags": list(form.requires_tags),
        "needs": dict(form.needs),
    }


def output_dir(output: str) -> str:
    """The folder frames of `output` (an absolute pattern) land in: the rule the
    coordinator delivers by (`core.outputs.output_folder`)."""
    return output_folder(output)


def drawn_settings(job_type: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The settings of a job type the panel draws from the schema."""
    filled = scene_settings_of(job_type)
    return [s for s in job_type.get("settings", []) if s["name"] not in filled]


def _dirname(path: str) -> str:
    return (ntpath if ntpath.splitdrive(path)[0] else posixpath).dirname(path)


def _basename(path: str) -> str:
    return os.path.basename(path.replace("\\", "/"))
