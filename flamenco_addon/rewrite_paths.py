"""Runs inside a separate Blender: points every path of a packed .blend at its packed place.

    blender -b --factory-startup -Y --python rewrite_paths.py -- JOB.json
    python rewrite_paths.py JOB.json          (a Python with the bpy module)

JOB.json is `packing.RewriteJob`: for each .blend, the file to open, where to
save it and its place in the pack, plus the remap {absolute path -> relpath}.
Paths are matched with `packing.blender_abspath`, the function the scan used,
and written relative ("//...") to the .blend's place in the pack. The
artist's Blender never opens these files, so their open file stays untouched.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy
from bpy_paths import path_slots  # type: ignore[import-not-found]
from packing import blend_relative, blender_abspath  # type: ignore[import-not-found]


def rewrite(entry: dict[str, str], remap: dict[str, str], restore: dict[str, str]) -> int:
    bpy.ops.wm.open_mainfile(filepath=entry["open"], load_ui=False)
    base = os.path.dirname(entry["open"])
    restore_bake_folders(restore)
    changed = 0
    for slot in path_slots(bpy.data):
        if slot.library is not None:
            continue  # stored in another .blend, fixed when that one is rewritten
        old = getattr(slot.holder, slot.attr)
        rel = remap.get(blender_abspath(old, base))
        if rel is not None:
            setattr(slot.holder, slot.attr, blend_relative(rel, entry["relpath"]))
            changed += 1
    bpy.ops.wm.save_as_mainfile(filepath=entry["save"], copy=True, relative_remap=False)
    return changed


def restore_bake_folders(restore: dict[str, str]) -> None:
    """Bake folders a partial write dropped ("Lost bake folders" in packing.py)."""
    for key, folder in restore.items():
        obj_name, mod_name = key.split("\x1f", 1)
        obj = bpy.data.objects.get(obj_name)
        mod = obj.modifiers.get(mod_name) if obj is not None else None
        if mod is not None and hasattr(mod, "bake_directory") and not mod.bake_directory:
            mod.bake_directory = folder


def main(job_path: str) -> None:
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    for n, entry in enumerate(job["blends"]):
        count = rewrite(entry, job["remap"], job.get("restore", {}) if n == 0 else {})
        print(f"REWROTE {count} path(s) in {entry['relpath']}", flush=True)
    print("REWRITE_DONE", flush=True)


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--") + 1] if "--" in sys.argv else sys.argv[-1])
