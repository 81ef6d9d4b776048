"""The files the open .blend reads, checked before anything renders.

A file the job did not bring renders as Blender's magenta "missing texture",
an empty linked collection or a silent sound, and the frames still look
finished. So after opening the .blend the runner looks for every external
file the scene may read and fails the task naming them, unless the job says
to render anyway (`missing_files: render`).

Runs inside Blender: the standard library and `bpy` only (the add-on's
tracer, flamenco_addon/deps.py, decides what the artist's side sends; this
checks what arrived, by Blender's own path resolution). Packed data reads
nothing from disk and is skipped; so are geometry-node bake folders, whose
bakes a render simulates afresh when they are empty, and simulation caches
not baked (Blender fills them as it renders).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# The frame number of a sequence is the last run of digits in the file name.
_LAST_DIGITS = re.compile(r"^(?P<head>.*?)(?P<digits>\d+)(?P<tail>\D*)$")
_SHOWN = 10  # missing files named in a failure reason; the log has them all


@dataclass(frozen=True)
class Input:
    """One file (or folder) the scene reads."""

    kind: str  # "image", "library", "sound", "font", "cache", "volume", ...
    owner: str  # the datablock's name, for the message
    path: str  # absolute, as Blender resolves it
    stored: str  # the path as the .blend stores it, for paths outside the project
    shape: str = "file"  # "file", "sequence" (any frame of it), "folder"


def _bpy() -> Any:
    return importlib.import_module("bpy")


def missing_inputs() -> list[Input]:
    """The inputs of the open file that are not on disk, in the file's order, once each."""
    found: dict[str, Input] = {}
    for item in inputs(_bpy().data):
        if item.path not in found and not present(item):
            found[item.path] = item
    return list(found.values())


def present(item: Input) -> bool:
    if item.shape == "folder":
        return os.path.isdir(item.path)
    if item.shape == "sequence":
        return os.path.isfile(item.path) or bool(_sequence_files(item.path))
    return os.path.isfile(item.path)


def _sequence_files(path: str) -> list[str]:
    folder, name = os.path.split(path)
    match = _LAST_DIGITS.match(name)
    if match is None:
        return []
    pattern = re.compile(re.escape(match["head"]) + r"\d+" + re.escape(match["tail"]))
    try:
        return [n for n in os.listdir(folder) if pattern.fullmatch(n)]
    except OSError:
        return []


def inputs(data: Any) -> Iterator[Input]:
    """Every external file the file's datablocks read, linked libraries' own included."""
    yield from _images(data)
    for lib in data.libraries:
        if getattr(lib, "packed_file", None) is None:
            yield _input("library", lib, lib.filepath, lib.parent)
    yield from _simple(data.movieclips, "movie clip", "source")
    yield from _simple(data.sounds, "sound", "")
    yield from _simple(data.fonts, "font", "")
    yield from _simple(getattr(data, "cache_files", ()), "cache", "is_sequence")
    yield from _simple(getattr(data, "volumes", ()), "volume", "is_sequence")
    yield from _modifier_caches(data)
    yield from _point_caches(data)
    yield from _strips(data)


def _input(kind: str, holder: Any, stored: str, library: Any, shape: str = "file") -> Input:
    """Resolved as Blender does: "//" is the folder of the .blend that stores the path."""
    bpy = _bpy()
    path = os.path.normpath(bpy.path.abspath(stored, library=library))
    return Input(kind, holder.name, path, stored, shape)


def _images(data: Any) -> Iterator[Input]:
    for image in data.images:
        if image.packed_file is not None or not image.filepath:
            continue
        if image.source == "TILED":  # one file per tile: 1001, 1002, ...
            for tile in image.tiles:
                path = image.filepath.replace("<UDIM>", str(tile.number))
                yield _input("image", image, path, image.library)
        elif image.source in {"FILE", "SEQUENCE", "MOVIE"}:
            shape = "sequence" if image.source == "SEQUENCE" else "file"
            yield _input("image", image, image.filepath, image.library, shape)


def _simple(collection: Any, kind: str, sequence_attr: str) -> Iterator[Input]:
    for item in collection:
        path = getattr(item, "filepath", "")
        if not path or path == "<builtin>" or getattr(item, "packed_file", None) is not None:
            continue
        flag = getattr(item, sequence_attr, False) if sequence_attr else False
        sequence = flag == "SEQUENCE" if isinstance(flag, str) else bool(flag)
        yield _input(kind, item, path, item.library, "sequence" if sequence else "file")


def _modifier_caches(data: Any) -> Iterator[Input]:
    """Mesh caches, and ocean and fluid caches the artist baked (a render does not
    remake them)."""
    for obj in data.objects:
        for mod in getattr(obj, "modifiers", ()):
            if mod.type == "MESH_CACHE" and mod.filepath:
                yield _input("cache", obj, mod.filepath, obj.library)
            elif mod.type == "OCEAN" and getattr(mod, "is_cached", False) and mod.filepath:
                yield _input("cache", obj, mod.filepath, obj.library, "folder")
            elif mod.type == "FLUID" and mod.fluid_type == "DOMAIN":
                domain = mod.domain_settings
                if getattr(domain, "has_cache_baked_any", False) and domain.cache_directory:
                    yield _input("cache", obj, domain.cache_directory, obj.library, "folder")


def _point_caches(data: Any) -> Iterator[Input]:
    """Baked simulations: an external folder, or //blendcache_<file>/ on disk."""
    for owner, cache, library in _caches_of(data):
        if cache.use_external and cache.filepath:
            yield _input("cache", owner, cache.filepath, library, "folder")
        elif cache.use_disk_cache and cache.is_baked:
            blend = library.filepath if library is not None else _bpy().data.filepath
            stem = os.path.splitext(os.path.basename(blend))[0]
            stored = f"//blendcache_{stem}"
            yield _input("cache", owner, stored, library, "folder")


def _caches_of(data: Any) -> Iterator[tuple[Any, Any, Any]]:
    for ob in data.objects:
        for mod in ob.modifiers:
            if getattr(mod, "point_cache", None) is not None:  # cloth, soft body
                yield ob, mod.point_cache, ob.library
            for surface in getattr(getattr(mod, "canvas_settings", None), "canvas_surfaces", ()):
                yield ob, surface.point_cache, ob.library  # dynamic paint
        for system in ob.particle_systems:
            yield ob, system.point_cache, ob.library
    for scene in data.scenes:
        world = scene.rigidbody_world
        if world is not None and world.point_cache is not None:
            yield scene, world.point_cache, scene.library


def _strips(data: Any) -> Iterator[Input]:
    for scene in data.scenes:
        editor = scene.sequence_editor
        if editor is None:
            continue
        # strips_all since Blender 4.4 (sequences_all until 5.0)
        strips: Any = getattr(editor, "strips_all", None) or getattr(editor, "sequences_all", ())
        for strip in strips:
            if strip.type == "IMAGE" and strip.directory:
                for element in strip.elements:
                    stored = os.path.join(strip.directory, element.filename)
                    yield _input("image strip", strip, stored, scene.library)
            elif strip.type == "MOVIE" and strip.filepath:
                yield _input("movie strip", strip, strip.filepath, scene.library)


# ---------------------------------------------------------------- the verdict


def project_root(blend: str, output_dir: str) -> str:
    """The folder the job's project was unpacked into on this worker.

    The agent unpacks it into <job folder>/project and renders into
    <job folder>/out-<task>-<attempt> (worker_agent/kinds.py, with_project);
    a .blend anywhere else is its own project root.
    """
    candidate = os.path.join(os.path.dirname(os.path.normpath(output_dir)), "project")
    if _inside(blend, candidate):
        return candidate
    return os.path.dirname(blend)


def _inside(path: str, folder: str) -> bool:
    try:
        rel = os.path.relpath(os.path.normpath(path), os.path.normpath(folder))
    except ValueError:  # another drive
        return False
    return rel != os.curdir and not rel.startswith(os.pardir)


def as_project_had_it(item: Input, root: str) -> str:
    """The path as the project knows it: relative to its root (forward slashes), or,
    for a path that points outside the project, as the .blend stores it."""
    if _inside(item.path, root):
        return os.path.relpath(item.path, root).replace(os.sep, "/")
    return item.stored


def missing_message(
    missing: list[Input], root: str, *, twins: Mapping[str, str] | None = None
) -> str:
    """The failure reason: the first missing file first, at most _SHOWN of them.

    twins: a missing path -> the path on disk that differs from it only in case
    (case_twins), named beside it: the fix is a name, not a file to send.
    """
    twins = twins or {}
    first = next((m.path for m in missing if m.path in twins), None)
    listed = [_listed(m, root, twins.get(m.path), first=m.path == first) for m in missing[:_SHOWN]]
    more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
    case = (
        ". Make the .blend's paths and the files' names agree in case (Windows and"
        " macOS workers ignore it)"
        if first is not None
        else ""
    )
    return (
        f"missing files (the scene reads them; the job's project lacks them): "
        f"{', '.join(listed)}{more}{case}. Send them with the job (the add-on and `submit`"
        " without --project find them), or submit with missing_files=render to"
        " render without them"
    )


def _listed(item: Input, root: str, twin: str | None, *, first: bool) -> str:
    named = f"{as_project_had_it(item, root)} ({item.kind} {item.owner!r})"
    if twin is None:
        return named
    there = as_project_had_it(Input(item.kind, item.owner, twin, twin, item.shape), root)
    why = "; Linux workers tell them apart" if first else ""
    return f"{named} is missing, {there} exists (the names differ in case{why})"


# ---------------------------------------------------------------- the case of names


def case_twins(missing: list[Input]) -> dict[str, str]:
    """Each missing path that exists on disk under another case -> that path.

    On a case-sensitive file system (Linux) "tex/Tex.png" is not "tex/tex.png";
    on Windows and macOS it is, and a worker there renders the job: so such a
    file is not missing on every worker alike, and the failure is not the job's.
    """
    found: dict[str, str] = {}
    for item in missing:
        twin = case_twin(item.path, sequence=item.shape == "sequence")
        if twin is not None:
            found[item.path] = twin
    return found


def case_twin(path: str, *, sequence: bool = False) -> str | None:
    """The path on disk that differs from `path` only in the case of its names
    (any of its folders' too), or None; for a sequence, any frame of it."""
    head, name = os.path.split(path)
    if not name or head == path:
        return None
    folder = head if os.path.isdir(head) else case_twin(head)
    if folder is None:
        return None
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    wanted = _case_pattern(name, sequence)
    same = sorted(n for n in names if wanted.fullmatch(n))
    if not same or (folder == head and name in same):
        return None  # none, or the very name (then not missing for its case)
    return os.path.join(folder, name if name in same else same[0])


def _case_pattern(name: str, sequence: bool) -> re.Pattern[str]:
    match = _LAST_DIGITS.match(name) if sequence else None
    if match is None:
        return re.compile(re.escape(name), re.IGNORECASE)
    return re.compile(re.escape(match["head"]) + r"\d+" + re.escape(match["tail"]), re.IGNORECASE)
