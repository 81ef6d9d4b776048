"""Where file paths live in `bpy.data`: the one list both the scan and the rewrite use.

The add-on's scan (operators.py, in the artist's Blender) turns these slots
into `packing.Dependency` records; `rewrite_paths.py` (in a separate Blender,
on the saved copy) writes the packed paths back into the same slots. Keeping
one list means a kind of file the scan packs is always a kind the rewrite
fixes. No relative imports: rewrite_paths.py imports this by file location.

Covered: images (single, sequences, UDIM tiles, movies), movie clips,
sounds, fonts, linked libraries, Alembic/USD caches, OpenVDB volumes, fluid
and ocean bake folders, mesh caches, image/movie strips of the sequencer,
point caches read from an external folder, and geometry-node bakes on disk
(the modifier's bake folder and each bake's own custom folder; 3.6+). Point
caches Blender writes itself have no path slot: they live in
`blendcache_<file>` beside the .blend, which scan.py packs as a folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PathSlot:
    kind: str  # for messages: "image", "library", ...
    owner: str  # the datablock's name
    holder: Any  # the object that has the attribute
    attr: str  # the attribute holding the path
    library: Any  # the Library whose file stores this path; None: the main file
    sequence: bool = False  # one frame of a numbered sequence
    udim: bool = False  # tiled image, path with <UDIM>
    directory: bool = False  # a folder
    optional: bool = False  # may be absent (a bake folder before its first bake)


def path_slots(data: Any) -> Iterator[PathSlot]:
    """Every path-holding attribute of the file, the libraries' own included."""
    yield from _images(data)
    yield from _libraries(data)
    yield from _simple(data, "movieclips", "movie clip", sequence_attr="source")
    yield from _simple(data, "sounds", "sound")
    yield from _simple(data, "fonts", "font")
    yield from _simple(data, "cache_files", "cache", sequence_attr="is_sequence")
    yield from _simple(data, "volumes", "volume", sequence_attr="is_sequence")
    yield from _modifiers(data)
    yield from _external_point_caches(data)
    yield from _node_bakes(data)
    yield from _strips(data)


def _images(data: Any) -> Iterator[PathSlot]:
    for image in data.images:
        if image.packed_file is not None or not image.filepath:
            continue
        if image.source not in {"FILE", "SEQUENCE", "TILED", "MOVIE"}:
            continue  # generated, viewer, render result
        yield PathSlot(
            "image",
            image.name,
            image,
            "filepath",
            image.library,
            sequence=image.source == "SEQUENCE",
            udim=image.source == "TILED",
        )


def _libraries(data: Any) -> Iterator[PathSlot]:
    for lib in data.libraries:
        if getattr(lib, "packed_file", None) is None:
            yield PathSlot("library", lib.name, lib, "filepath", lib.parent)


def _simple(
    data: Any, collection: str, kind: str, *, sequence_attr: str | None = None
) -> Iterator[PathSlot]:
    for item in getattr(data, collection, ()):
        path = getattr(item, "filepath", "")
        if not path or path == "<builtin>" or getattr(item, "packed_file", None) is not None:
            continue
        flag = getattr(item, sequence_attr, False) if sequence_attr else False
        sequence = flag == "SEQUENCE" if isinstance(flag, str) else bool(flag)
        yield PathSlot(kind, item.name, item, "filepath", item.library, sequence=sequence)


# Modifier type -> (settings attribute or "", path attribute, is it a folder)
_MODIFIER_PATHS = {
    "FLUID": ("domain_settings", "cache_directory", True),
    "OCEAN": ("", "filepath", True),
    "MESH_CACHE": ("", "filepath", False),
}


def _modifiers(data: Any) -> Iterator[PathSlot]:
    for obj in data.objects:
        for mod in getattr(obj, "modifiers", ()):
            spec = _MODIFIER_PATHS.get(mod.type)
            if spec is None:
                continue
            settings, attr, folder = spec
            holder = getattr(mod, settings) if settings else mod
            if holder is None or (mod.type == "FLUID" and mod.fluid_type != "DOMAIN"):
                continue
            if mod.type == "OCEAN" and not getattr(mod, "is_cached", False):
                continue
            if getattr(holder, attr, ""):
                yield PathSlot(
                    "cache", f"{obj.name}/{mod.name}", holder, attr, obj.library, directory=folder
                )


def point_caches(data: Any) -> Iterator[tuple[Any, str, Any]]:
    """(point cache, owner name, library) for cloth, soft bodies, dynamic paint,
    particles and rigid-body worlds."""
    for ob in data.objects:
        for mod in ob.modifiers:
            if getattr(mod, "point_cache", None) is not None:  # cloth, soft body
                yield mod.point_cache, f"{ob.name}/{mod.name}", ob.library
            for surface in getattr(getattr(mod, "canvas_settings", None), "canvas_surfaces", ()):
                yield surface.point_cache, f"{ob.name}/{surface.name}", ob.library
        for system in ob.particle_systems:
            yield system.point_cache, f"{ob.name}/{system.name}", ob.library
    for scene in data.scenes:
        world = scene.rigidbody_world
        if world is not None and world.point_cache is not None:
            yield world.point_cache, f"{scene.name}/rigid body world", scene.library


def _external_point_caches(data: Any) -> Iterator[PathSlot]:
    """Caches the artist pointed at a folder of their own ("External" in the Cache panel)."""
    for cache, owner, library in point_caches(data):
        if cache.use_external and cache.filepath:
            yield PathSlot("cache", owner, cache, "filepath", library, directory=True)


def _node_bakes(data: Any) -> Iterator[PathSlot]:
    """Geometry-node bakes on disk. Blender fills the modifier's folder in on the
    first bake (//blendcache_<file>/<object>_<modifier>); a bake may have its own."""
    for obj in data.objects:
        for mod in getattr(obj, "modifiers", ()):
            if mod.type != "NODES":
                continue
            # bake_directory since 4.1, simulation_bake_directory in 3.6 and 4.0
            attr = "bake_directory"
            if not hasattr(mod, attr):
                attr = "simulation_bake_directory"
            default_target = getattr(mod, "bake_target", "DISK")  # 4.3+ may pack bakes
            uses_folder = False
            for bake in getattr(mod, "bakes", ()):
                target = getattr(bake, "bake_target", "INHERIT")
                if (default_target if target == "INHERIT" else target) != "DISK":
                    continue
                if bake.use_custom_path:
                    if bake.directory:
                        yield PathSlot(
                            "bake",
                            f"{obj.name}/{mod.name}",
                            bake,
                            "directory",
                            obj.library,
                            directory=True,
                            optional=True,
                        )
                else:
                    uses_folder = True
            if getattr(mod, attr, "") and (uses_folder or not hasattr(mod, "bakes")):
                yield PathSlot(
                    "bake",
                    f"{obj.name}/{mod.name}",
                    mod,
                    attr,
                    obj.library,
                    directory=True,
                    optional=True,
                )


def _strips(data: Any) -> Iterator[PathSlot]:
    for scene in data.scenes:
        editor = scene.sequence_editor
        if editor is None:
            continue
        # strips_all since Blender 4.4 (sequences_all until 5.0)
        strips: Any = getattr(editor, "strips_all", None) or getattr(editor, "sequences_all", ())
        for strip in strips:
            if strip.type == "IMAGE" and strip.directory:
                yield PathSlot(
                    "image strip", strip.name, strip, "directory", scene.library, directory=True
                )
            elif strip.type == "MOVIE" and strip.filepath:
                yield PathSlot("movie strip", strip.name, strip, "filepath", scene.library)
