"""Reads the compositor File Output nodes of the scene a job renders. No `bpy` import.

Runs in the artist's Blender (scan.py) and in the headless Blender the CLI's
trace starts (trace_paths.py, which imports the add-on's modules by file, so
nothing here imports the coordinator). It copies out what each node writes, as
typed: the folder, the slot's name, the format; `coordinator.core.fileoutputs`
resolves the paths as Blender does and checks them.

Only what a render writes is listed: the top-level File Output nodes of the
scene's compositor, not muted, when the scene composites; per node its linked
slots (Blender skips the others), or the node once for multilayer EXR. The
worker mutes every other File Output node (worker_agent/in_blender/fileoutputs.py).
"""

from __future__ import annotations

from typing import Any

MULTILAYER = "OPEN_EXR_MULTILAYER"


def compositor(scene: Any) -> Any:
    """The scene's compositing node tree, or None when its render does not composite."""
    if not scene.render.use_compositing:
        return None
    if hasattr(scene, "compositing_node_group"):  # 5.0+: a node group, always used
        return scene.compositing_node_group
    return scene.node_tree if scene.use_nodes else None


def file_output_nodes(scene: Any) -> list[dict[str, Any]]:
    """What each File Output node of `scene` writes per frame, one dict per file:
    node, slot (None for multilayer EXR), label, directory, name, file_format, codec."""
    tree = compositor(scene)
    if tree is None:
        return []
    found: list[dict[str, Any]] = []
    for node in tree.nodes:
        if node.type == "OUTPUT_FILE" and not node.mute:
            found.extend(_node_files(node))
    return found


def _node_files(node: Any) -> list[dict[str, Any]]:
    modern = hasattr(node, "file_output_items")  # 5.0: directory, file_name, items
    folder = node.directory if modern else node.base_path
    prefix = node.file_name if modern else ""
    if _format_id(node.format) == MULTILAYER:
        if not any(socket.is_linked for socket in node.inputs):
            return []
        base = {"node": node.name, "slot": None, "label": None}
        if modern:
            return [{**base, "directory": folder, "name": prefix, **_format(node.format)}]
        return [{**base, "directory": "", "name": folder, **_format(node.format)}]
    slots = node.file_output_items if modern else node.file_slots
    files = []
    for index, slot in enumerate(slots):
        if not node.inputs[index].is_linked:
            continue  # Blender writes nothing for it
        own = slot.override_node_format if modern else not slot.use_node_format
        name = prefix + (slot.name if modern else slot.path)
        files.append(
            {
                "node": node.name,
                "slot": index,
                "label": slot.name if modern else slot.path,
                "directory": folder,
                "name": name,
                **_format(slot.format if own else node.format),
            }
        )
    return files


def _format_id(settings: Any) -> str:
    if getattr(settings, "media_type", "") == "MULTI_LAYER_IMAGE":  # 5.0
        return MULTILAYER
    return str(settings.file_format)


def _format(settings: Any) -> dict[str, str]:
    return {"file_format": _format_id(settings), "codec": str(settings.jpeg2k_codec)}
