"""Reading Blender: the scene snapshot, the file's dependencies, a copy of the open
file's state, the coordinator to use.

Everything here copies out of bpy into the plain dataclasses of
submission.py and packing.py; decisions are made there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import bpy

from coordinator.core.outputs import safe_filename

from . import deps, farms, local_farm, preferences
from .fileoutput_nodes import file_output_nodes
from .packing import Dependency, blender_abspath
from .submission import SceneSnapshot, SubmitError


def snapshot(scene: Any) -> SceneSnapshot:
    render = scene.render
    settings = render.image_settings
    return SceneSnapshot(
        blend_path=bpy.data.filepath,
        scene_name=scene.name,
        camera=scene.camera.name if scene.camera else None,
        frame_start=scene.frame_start,
        frame_end=scene.frame_end,
        frame_step=scene.frame_step,
        render_filepath=render.filepath,
        file_format=settings.file_format,
        media_type=getattr(settings, "media_type", ""),
        engine=render.engine,
        samples=scene.cycles.samples if render.engine == "CYCLES" else 0,
        use_file_extension=render.use_file_extension,
        use_overwrite=render.use_overwrite,
        blender_version="{}.{}".format(*bpy.app.version[:2]),
        path_variables=path_variables(scene),
        file_outputs=tuple(file_output_nodes(scene)),
    )


def path_variables(scene: Any) -> dict[str, str | int | float] | None:
    """What render.filepath's templates ("{blend_name}", ...) stand for; None before 4.5."""
    if bpy.app.version < (4, 5, 0):
        return None
    render = scene.render
    blend_dir, blend_file = os.path.split(bpy.data.filepath)
    scale = render.resolution_percentage
    found: dict[str, str | int | float] = {
        "blend_name": blend_file[: -len(".blend")] if blend_file.endswith(".blend") else blend_file,
        "fps": render.fps / render.fps_base,
        "resolution_x": render.resolution_x * scale // 100,
        "resolution_y": render.resolution_y * scale // 100,
    }
    if bpy.app.version >= (5, 0, 0):
        found["blend_dir"] = os.path.join(blend_dir, "") if blend_dir else ""
        found["blend_name_lib"], found["blend_dir_lib"] = found["blend_name"], found["blend_dir"]
        # names of things, unlike the file's own, are made safe as file names
        found["scene_name"] = safe_filename(scene.name)
        found["camera_name"] = safe_filename(scene.camera.name if scene.camera else "")
    return found


def dependencies() -> list[Dependency]:
    """Every file the open .blend uses, its linked libraries' own files included
    (deps.py: the tracer the CLI runs too)."""
    return deps.dependencies(bpy.data)


# Window, screens and workspaces: the UI, which a render never reads.
_UI_DATA = frozenset({"window_managers", "screens", "workspaces"})


def local_ids() -> set[Any]:
    """Every datablock of the open file itself (linked ones come along through
    their library), for `bpy.data.libraries.write`."""
    found: set[Any] = set()
    for attr in dir(bpy.data):
        collection = getattr(bpy.data, attr, None)
        if attr in _UI_DATA or not isinstance(collection, bpy.types.bpy_prop_collection):
            continue
        found.update(i for i in collection if isinstance(i, bpy.types.ID) and i.library is None)
    return found


def bake_folders() -> dict[str, str]:
    """Geometry-node modifiers' bake folders, absolute: "object\x1fmodifier" -> folder
    ("Lost bake folders" in packing.py)."""
    main_dir = os.path.dirname(bpy.data.filepath)
    found = {}
    for obj in bpy.data.objects:
        if obj.library is not None:
            continue
        for mod in getattr(obj, "modifiers", ()):
            folder = getattr(mod, "bake_directory", "")
            if mod.type == "NODES" and folder:
                found[f"{obj.name}\x1f{mod.name}"] = blender_abspath(folder, main_dir)
    return found


def in_ui() -> bool:
    """Whether Blender runs with its window (tests of the UI's copy path replace it)."""
    return not bpy.app.background


def main_source(copy: Path) -> tuple[str, dict[str, str]]:
    """The .blend the farm's copy is made from, without changing the artist's file
    state, and the bake folders the rewrite must set again in it.

    Unchanged since the last save (as the UI tracks it): the file on disk
    itself. Otherwise the open file's data is written to `copy`: in scripts
    with save_as_mainfile(copy=True); in the UI with `libraries.write`,
    because save_as_mainfile, even with copy=True, sends a "file saved"
    notifier that marks the open file as saved (the title loses its "*",
    quitting no longer asks to save) and adds it to the recent files.
    """
    ui = in_ui()
    if ui and not bpy.data.is_dirty:
        return str(bpy.data.filepath), {}
    copy.parent.mkdir(parents=True, exist_ok=True)
    if not ui:  # Blender 3.x does not track unsaved changes in -b
        bpy.ops.wm.save_as_mainfile(filepath=str(copy), copy=True, relative_remap=True)
        return str(copy), {}
    ids = local_ids()
    if bpy.data.filepath not in _written:
        # Paths are written absolute (the same wherever the copy goes) and then
        # restored in place, leaving the longer string's tail in the unused end of
        # each path field, which is saved too: the first write of a session
        # differs from every later one, so it is done twice.
        bpy.data.libraries.write(str(copy), ids, path_remap="ABSOLUTE")
        _written.add(bpy.data.filepath)
    bpy.data.libraries.write(str(copy), ids, path_remap="ABSOLUTE")
    return str(copy), bake_folders()


_written: set[str] = set()  # files whose paths libraries.write has remapped once


def rewrite_command() -> list[str]:
    """How to run rewrite_paths.py in a separate Blender like this one."""
    script = str(Path(__file__).with_name("rewrite_paths.py"))
    if bpy.app.binary_path:  # empty in the bpy module
        return [
            bpy.app.binary_path,
            *("-b", "--factory-startup", "-noaudio", "--disable-autoexec"),
            *("--python-exit-code", "1", "--python", script, "--"),
        ]
    return [sys.executable, script]  # the bpy module: a Python that imports bpy


def python_path() -> list[str]:
    """Blender's module search path, for the Python programs started from here
    (helper, local farm, farm commands), less Blender's own script folders: their
    `bpy` package would hide the bpy module from a worker that renders with it."""
    return [
        p
        for p in sys.path
        if p and os.path.isdir(p) and not os.path.isfile(os.path.join(p, "bpy", "__init__.py"))
    ]


def coordinator(context: Any, *, url: str = "", token: str = "") -> tuple[str, str]:
    """(url, token) to talk to: the operator's, else the preferences' choice.
    The farm this computer runs always gets its own token."""
    prefs = preferences.get(context)
    local = local_farm.status(preferences.data_dir(prefs))
    if not url:
        url = _chosen_url(context, prefs, local)
    if not url:
        raise SubmitError(
            "No farm chosen: pick a farm in the Farm panel, type its address in the"
            " add-on preferences, or start a farm on this computer"
        )
    if "://" not in url:
        url = f"http://{url}"
    url = url.rstrip("/")
    if not token:
        token = farms.token_for(
            url, local_url=local.url, local_token=local.token, typed=prefs.token
        )
    return url, token


def local_url(context: Any) -> str:
    """The farm this computer runs, "" when none."""
    local = local_farm.status(preferences.data_dir(preferences.get(context)))
    return local.url if local.running else ""


def _chosen_url(context: Any, prefs: Any, local: local_farm.FarmState) -> str:
    mode = prefs.coordinator_mode
    if mode == "URL":
        return str(prefs.coordinator_url).strip()
    here = local.url if local.running else ""
    if mode == "LOCAL":
        return here
    return farms.choose(str(context.window_manager.farm.coordinator_url), here)
