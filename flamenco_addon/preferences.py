"""Add-on preferences: which coordinator, the farm token, where the local farm lives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

from . import local_farm, sync

_PACKAGE = __package__ or "flamenco_addon"


class FarmPreferences(bpy.types.AddonPreferences):
    bl_idname = _PACKAGE

    coordinator_mode: bpy.props.EnumProperty(
        name="Coordinator",
        items=[
            (
                "AUTO",
                "Find on the network",
                "Use a coordinator found on the LAN (chosen in the panel)",
            ),
            ("URL", "Address", "Use the coordinator at the address below"),
            ("LOCAL", "This computer", "Use the farm started on this computer"),
        ],
        default="AUTO",
    )
    coordinator_url: bpy.props.StringProperty(
        name="Address",
        description="The coordinator's address, e.g. http://render-boss:8765",
        default="",
    )
    token: bpy.props.StringProperty(
        name="Farm token",
        description="Printed by the coordinator when it starts (token.txt in its data folder);"
        " empty: the token of the farm on this computer",
        default="",
        subtype="PASSWORD",
    )
    local_data_dir: bpy.props.StringProperty(
        name="Local farm data",
        description="Where a farm started on this computer keeps its database, uploaded"
        " files and logs (empty: the default folder)",
        default="",
        subtype="DIR_PATH",
    )
    local_worker: bpy.props.BoolProperty(
        name="Render on this computer too",
        description="Also start a worker that renders with this Blender",
        default=True,
    )
    results: bpy.props.EnumProperty(
        name="Frames",
        items=[
            (
                "AUTO",
                "Automatic",
                "The farm writes frames itself when it runs on this computer;"
                " otherwise this Blender downloads them",
            ),
            (
                "COORDINATOR",
                "Farm writes them",
                "The coordinator writes into the output path"
                " (it runs here, or sees the same shared folder)",
            ),
            (
                "DOWNLOAD",
                "Download",
                "This Blender downloads finished frames into the output folder",
            ),
        ],
        default="AUTO",
    )

    def draw(self, context: Any) -> None:
        layout = self.layout
        layout.prop(self, "coordinator_mode", expand=True)
        if self.coordinator_mode == "URL":
            layout.prop(self, "coordinator_url")
        layout.prop(self, "token")
        layout.prop(self, "results")
        box = layout.box()
        box.label(text="Farm on this computer")
        box.prop(self, "local_data_dir")
        box.prop(self, "local_worker")
        box.label(text=f"Data folder: {data_dir(self)}", icon="FILE_FOLDER")


def get(context: Any = None) -> FarmPreferences:
    ctx = context or bpy.context
    addon = ctx.preferences.addons.get(_PACKAGE) if ctx.preferences else None
    if addon is None:  # registered by hand, e.g. in a test without enabling
        raise RuntimeError(f"the add-on {_PACKAGE} is not enabled")
    prefs: FarmPreferences = addon.preferences
    return prefs


def data_dir(prefs: FarmPreferences) -> Path:
    if prefs.local_data_dir:
        return Path(bpy.path.abspath(prefs.local_data_dir))
    return local_farm.default_data_dir()


# The legacy add-on's folder for its records under Blender's config folder,
# named after the product (the extension's id), not after the package folder.
CONFIG_FOLDER = "lan_render_farm"
_OLD_CONFIG_FOLDER = "flamenco_addon"  # before 0.2: moved once, records kept


def user_dir() -> Path:
    """The add-on's own folder for job records (extension API on 4.2+, config dir before)."""
    try:
        return Path(bpy.utils.extension_path_user(_PACKAGE, create=True))
    except (AttributeError, ValueError):  # legacy add-on, or Blender < 4.2
        config = Path(bpy.utils.user_resource("CONFIG"))
        return sync.adopt_old_folder(config / _OLD_CONFIG_FOLDER, config / CONFIG_FOLDER)


CLASSES = (FarmPreferences,)
