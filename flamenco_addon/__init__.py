"""Render Farm: submit renders to a LAN farm from Blender's Render Properties.

Only registers, and imports bpy only then, so that the core modules
(submission, packing, sync, ...) import without Blender in tests. Blender
4.2+ loads this package as an extension (see blender_manifest.toml; `bl_info`
is removed before register()); Blender 3.x-4.1 load it as a legacy add-on
through `bl_info`: unpacked from the extension zip, it unpacks its own wheels
(wheels.py); or with its Python dependencies importable (docs/artist-guide.md).
"""

from __future__ import annotations

bl_info = {
    "name": "Render Farm",
    "author": "LAN render farm developers",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Properties > Render > Render Farm",
    "description": "Submit renders to a render farm on your local network",
    "category": "Render",
}


def register() -> None:
    if not __name__.startswith("bl_ext."):  # a legacy add-on: Blender installed no wheels
        from pathlib import Path

        from . import wheels

        wheels.ensure(Path(__file__).parent)
    from . import addon

    addon.register()


def unregister() -> None:
    from . import addon

    addon.unregister()
