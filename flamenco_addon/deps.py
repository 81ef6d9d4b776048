"""The tracer: every file a .blend uses, as `packing.Dependency` records. No `bpy` import.

One set of rules for everything that sends a .blend to the farm: the add-on
runs it on the artist's open file (scan.py), and `submit` without --project
runs it in a headless Blender on the submitting machine (trace_paths.py), so
the CLI packs exactly what the add-on packs. It reads `bpy.data` through the
`data` it is given; the slots it visits are bpy_paths.py's, the list the
rewrite uses too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING or __package__:
    from .bpy_paths import path_slots, point_caches
    from .packing import Dependency, blender_abspath, point_cache_folder
else:  # run by file location inside a separate Blender (trace_paths.py), as rewrite_paths.py
    from bpy_paths import path_slots, point_caches
    from packing import Dependency, blender_abspath, point_cache_folder


def dependencies(data: Any) -> list[Dependency]:
    """Every file the open .blend (`bpy.data`) uses, its linked libraries' own files included."""
    main_dir = os.path.dirname(data.filepath)
    lib_dirs: dict[Any, str] = {}

    def folder_of(library: Any) -> str:
        if library is None:
            return main_dir
        if library not in lib_dirs:
            path = blender_abspath(library.filepath, folder_of(library.parent))
            lib_dirs[library] = os.path.dirname(path)
        return lib_dirs[library]

    deps = _point_cache_dependencies(data)
    for slot in path_slots(data):
        path = blender_abspath(getattr(slot.holder, slot.attr), folder_of(slot.library))
        deps.append(
            Dependency(
                slot.kind,
                slot.owner,
                path,
                sequence=slot.sequence,
                udim=slot.udim,
                directory=slot.directory,
                blend=slot.kind == "library",
                optional=slot.optional,
            )
        )
    return deps


def _point_cache_dependencies(data: Any) -> list[Dependency]:
    """Baked simulations (cloth, soft bodies, particles, rigid bodies, dynamic paint)
    kept on disk live in //blendcache_<file name>/ beside the .blend. The packed .blend
    keeps its name and place, so packing that folder beside it is all they need."""
    folder = point_cache_folder(data.filepath)
    on_disk = any(c.use_disk_cache and not c.use_external for c, _, _ in point_caches(data))
    if on_disk and os.path.isdir(folder):
        return [Dependency("cache", "baked simulations", folder, directory=True)]
    return []
